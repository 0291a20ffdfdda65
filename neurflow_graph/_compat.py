"""Make ``import torchvision`` work when its compiled ops do not match the installed torch.

A CUDA build of torchvision next to a CPU build of torch cannot load its C++ extension, and
``torchvision._meta_registrations`` then fails because the ``torchvision::nms``/``qnms`` schemas it
decorates do not exist. Defining those two schemas (no kernels) lets the pure-Python parts of
torchvision (models, transforms) import; calling ``torchvision.ops.nms`` still fails loudly.
"""

from __future__ import annotations

import importlib
import sys
import types

_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_fragment = None  # keeps the torch.library registration alive for the process


def _schema_exists(name: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def import_torchvision() -> types.ModuleType:
    """Import torchvision, first registering the operator schemas its Python side expects."""
    global _fragment
    import torch

    missing = [name for name in _MISSING_SCHEMAS if not _schema_exists(name)]
    if missing:
        try:  # a matching build registers them itself on import
            return importlib.import_module("torchvision")
        except RuntimeError:
            for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[mod]
        missing = [name for name in _MISSING_SCHEMAS if not _schema_exists(name)]
        if _fragment is None:
            _fragment = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _fragment.define(_MISSING_SCHEMAS[name])
    return importlib.import_module("torchvision")
