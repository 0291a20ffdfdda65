"""Make ``import torchvision`` work when its compiled ops do not match the installed torch.

A CUDA build of torchvision next to a CPU build of torch cannot load its C++ extension, and
``torchvision._meta_registrations`` then fails because the ``torchvision::nms``/``qnms`` schemas it
decorates do not exist. Defining those two schemas (no kernels) lets the pure-Python parts of
torchvision (models, transforms) import; calling ``torchvision.ops.nms`` still fails loudly.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
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


def prepare_torchvision() -> None:
    """Let a later plain ``import torchvision`` work, without importing it (run just before its first import).

    Loads torchvision's compiled ops the way torchvision does; where they do not load (a build that does
    not match torch), defines the two schemas its Python side needs instead.
    """
    global _fragment
    if "torchvision" in sys.modules:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    missing = [name for name in _MISSING_SCHEMAS if not _schema_exists(name)]
    for folder in spec.submodule_search_locations if missing else ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            library = os.path.join(folder, "_C" + suffix)
            if os.path.isfile(library):
                with contextlib.suppress(OSError, ImportError, RuntimeError):
                    torch.ops.load_library(library)
    missing = [name for name in _MISSING_SCHEMAS if not _schema_exists(name)]
    if missing and _fragment is None:
        _fragment = torch.library.Library("torchvision", "FRAGMENT")
    for name in missing:
        _fragment.define(_MISSING_SCHEMAS[name])


class _PrepareBeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs `prepare_torchvision` once, just before the first `import torchvision`, then steps aside."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - the MetaPathFinder protocol
        if name == "torchvision":
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
            prepare_torchvision()
        return None  # the ordinary finders import it


def prepare_torchvision_on_import() -> None:
    """Arrange for `prepare_torchvision` to run when torchvision is first imported (not now: torch is heavy)."""
    if "torchvision" in sys.modules or any(isinstance(f, _PrepareBeforeTorchvision) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _PrepareBeforeTorchvision())


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
