"""Image debugging (paper section 5.1): group-confidence scores, group masking against random masks, storage."""

from neurflow_graph.debugging.class_debug import ClassDebug, debug_class, describe_group
from neurflow_graph.debugging.core import DebugResult, GroupDebug, debug_images, group_confidence
from neurflow_graph.debugging.sources import DebugImages, folder_images, recipe_images, run_images
from neurflow_graph.debugging.store import (
    intervention_id,
    intervention_properties,
    layer_groups_from_bundle,
    store_interventions,
)

__all__ = [
    "ClassDebug",
    "DebugImages",
    "DebugResult",
    "GroupDebug",
    "debug_class",
    "debug_images",
    "describe_group",
    "folder_images",
    "group_confidence",
    "intervention_id",
    "intervention_properties",
    "layer_groups_from_bundle",
    "recipe_images",
    "run_images",
    "store_interventions",
]
