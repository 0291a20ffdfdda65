"""neurflow-graph: NeurFlow circuits for vision models, stored in a graph database.

The pipeline runs one way: images -> patches -> activations -> attribution -> circuit -> groups ->
artifacts (bundles) -> store -> queries. Each stage's public entry is re-exported here.
"""

try:  # registers the notebook view of a circuit; it reads stores, so it needs the neo4j driver
    import neurflow_graph.render.circuit  # noqa: F401
except ImportError:  # no store driver installed (a bare GPU machine): the engine imports all the same
    pass
from neurflow_graph._version import __version__
from neurflow_graph.bundle.files import read_bundle, write_bundle
from neurflow_graph.engine.activations import Activations, compute_activations, feature_maps
from neurflow_graph.engine.attribution import Attribution, IntegratedGradients, quadrature
from neurflow_graph.engine.circuit import Circuit, Transition, build_circuit
from neurflow_graph.engine.groups import GroupEdge, NeuronGroup, NeuronGroups, find_neuron_groups
from neurflow_graph.engine.images import (
    ImageSet,
    filter_predicted,
    image_set_from_tensors,
    load_image_folder,
    skimage_images,
)
from neurflow_graph.engine.layers import ablate, bridge, capture, validate_layers
from neurflow_graph.engine.layouts import Layout, resolve_layouts
from neurflow_graph.engine.patches import Patches, make_patches
from neurflow_graph.engine.pipeline import Bundle, ModelSpec, NeurFlow, NeurFlowParams
from neurflow_graph.engine.presets import ModelPreset, get_preset, preset_names

from ._compat import prepare_torchvision
from .errors import (
    ArtifactError,
    ConfigError,
    DataError,
    LayerError,
    NeurflowGraphError,
    QueryError,
    SchemaVersionError,
    StoreError,
    StoreUnavailable,
)
from .recipes import Recipe, load_recipe

prepare_torchvision()  # a plain `import torchvision` works after `import neurflow_graph`, whatever its build

__all__ = [
    "__version__",
    "Activations", "ArtifactError", "Attribution", "Bundle", "Circuit", "ConfigError", "DataError", "GroupEdge",
    "ImageSet", "IntegratedGradients", "LayerError", "ModelPreset", "ModelSpec", "NeurFlow", "NeurFlowParams",
    "NeuronGroup", "NeuronGroups", "NeurflowGraphError", "Patches", "QueryError", "Recipe", "SchemaVersionError",
    "StoreError", "StoreUnavailable", "Transition", "ablate", "bridge", "build_circuit", "capture",
    "compute_activations", "feature_maps", "filter_predicted", "find_neuron_groups", "get_preset",
    "image_set_from_tensors", "load_image_folder", "load_recipe", "make_patches", "preset_names", "quadrature",
    "read_bundle", "skimage_images", "validate_layers", "write_bundle",
    "Layout", "resolve_layouts",
]
