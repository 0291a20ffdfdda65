"""neurflow-graph: NeurFlow circuits for vision models, stored in a graph database.

The pipeline runs one way: images -> patches -> activations -> attribution -> circuit -> groups ->
artifacts (bundles) -> store -> queries. Each stage's public entry is re-exported here.
"""

__version__ = "0.1.0"

from ._compat import prepare_torchvision
from .activations import Activations, compute_activations, feature_maps
from .artifacts import Bundle, read_bundle, write_bundle
from .attribution import Attribution, IntegratedGradients, quadrature
from .circuit import Circuit, Transition, build_circuit
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
from .groups import GroupEdge, NeuronGroup, NeuronGroups, find_neuron_groups
from .images import ImageSet, filter_predicted, image_set_from_tensors, load_image_folder, skimage_images
from .layers import ablate, bridge, capture, validate_layers
from .layouts import Layout, resolve_layouts
from .patches import Patches, make_patches
from .pipeline import ModelSpec, NeurFlow, NeurFlowParams
from .presets import ModelPreset, get_preset, preset_names
from .recipes import Recipe, load_recipe

prepare_torchvision()  # a plain `import torchvision` works after `import neurflow_graph`, whatever its build

__all__ = [
    "Activations", "ArtifactError", "Attribution", "Bundle", "Circuit", "ConfigError", "DataError", "GroupEdge",
    "ImageSet", "IntegratedGradients", "LayerError", "ModelPreset", "ModelSpec", "NeurFlow", "NeurFlowParams",
    "NeuronGroup", "NeuronGroups", "NeurflowGraphError", "Patches", "QueryError", "Recipe", "SchemaVersionError",
    "StoreError", "StoreUnavailable", "Transition", "ablate", "bridge", "build_circuit", "capture",
    "compute_activations", "feature_maps", "filter_predicted", "find_neuron_groups", "get_preset",
    "image_set_from_tensors", "load_image_folder", "load_recipe", "make_patches", "preset_names", "quadrature",
    "read_bundle", "skimage_images", "validate_layers", "write_bundle",
    "Layout", "resolve_layouts",
]
