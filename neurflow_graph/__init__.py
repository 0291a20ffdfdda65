"""neurflow-graph: NeurFlow circuits for vision models, stored in a graph database.

The pipeline runs one way: images -> patches -> activations -> attribution -> circuit -> groups ->
artifacts (bundles) -> store -> queries. Each stage's public entry is re-exported here, imported on first
use (PEP 562), so `import neurflow_graph` and the command line start without torch or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurflow_graph import records as _records
from neurflow_graph._compat import prepare_torchvision_on_import
from neurflow_graph._lazy import lazy_exports
from neurflow_graph._version import __version__
from neurflow_graph.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    LayerError,
    MissingDependency,
    NeurflowGraphError,
    QueryError,
    SchemaVersionError,
    StoreError,
    StoreUnavailable,
)

_EXPORTS: dict[str, tuple[str, ...]] = {
    "neurflow_graph.bundle.files": ("read_bundle", "write_bundle"),
    "neurflow_graph.engine.activations": ("Activations", "compute_activations", "feature_maps"),
    "neurflow_graph.engine.attribution": ("Attribution", "IntegratedGradients", "quadrature"),
    "neurflow_graph.engine.circuit": ("Circuit", "Transition", "build_circuit"),
    "neurflow_graph.engine.groups": ("GroupEdge", "NeuronGroup", "NeuronGroups", "find_neuron_groups"),
    "neurflow_graph.models.images": ("ImageSet", "filter_predicted", "image_set_from_tensors", "load_image_folder",
                                     "skimage_images"),
    "neurflow_graph.engine.layers": ("ablate", "bridge", "capture", "validate_layers"),
    "neurflow_graph.engine.layouts": ("Layout", "resolve_layouts"),
    "neurflow_graph.engine.params": ("NeurFlowParams",),
    "neurflow_graph.engine.patches": ("Patches", "make_patches"),
    "neurflow_graph.engine.pipeline": ("Bundle", "ModelSpec", "NeurFlow"),
    "neurflow_graph.models.presets": ("ModelPreset", "get_preset", "preset_names"),
    "neurflow_graph.recipes": ("Recipe", "load_recipe"),
}

__all__ = [
    "__version__",
    "Activations", "ArtifactError", "Attribution", "Bundle", "Circuit", "ConfigError", "DataError", "GroupEdge",
    "ImageSet", "IntegratedGradients", "LayerError", "MissingDependency", "ModelPreset", "ModelSpec", "NeurFlow",
    "NeurFlowParams", "NeuronGroup", "NeuronGroups", "NeurflowGraphError", "Patches", "QueryError", "Recipe",
    "SchemaVersionError", "StoreError", "StoreUnavailable", "Transition", "ablate", "bridge", "build_circuit",
    "capture", "compute_activations", "feature_maps", "filter_predicted", "find_neuron_groups", "get_preset",
    "image_set_from_tensors", "load_image_folder", "load_recipe", "make_patches", "preset_names", "quadrature",
    "read_bundle", "skimage_images", "validate_layers", "write_bundle",
    "Layout", "resolve_layouts",
]

# The notebook view of a circuit lives in the render layer; records import it the first time one is displayed.
_records.register_html_views("neurflow_graph.render.circuit")
# A plain `import torchvision` after `import neurflow_graph` works, whatever its build (see _compat).
prepare_torchvision_on_import()


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from neurflow_graph.bundle.files import read_bundle, write_bundle
    from neurflow_graph.engine.activations import Activations, compute_activations, feature_maps
    from neurflow_graph.engine.attribution import Attribution, IntegratedGradients, quadrature
    from neurflow_graph.engine.circuit import Circuit, Transition, build_circuit
    from neurflow_graph.engine.groups import GroupEdge, NeuronGroup, NeuronGroups, find_neuron_groups
    from neurflow_graph.engine.layers import ablate, bridge, capture, validate_layers
    from neurflow_graph.engine.layouts import Layout, resolve_layouts
    from neurflow_graph.engine.params import NeurFlowParams
    from neurflow_graph.engine.patches import Patches, make_patches
    from neurflow_graph.engine.pipeline import Bundle, ModelSpec, NeurFlow
    from neurflow_graph.models.images import (
        ImageSet,
        filter_predicted,
        image_set_from_tensors,
        load_image_folder,
        skimage_images,
    )
    from neurflow_graph.models.presets import ModelPreset, get_preset, preset_names
    from neurflow_graph.recipes import Recipe, load_recipe
