"""Measured memory: the peak bytes of the tensors a call allocates, and how many items a call may take."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

T = TypeVar("T")
# On the real-weights benchmark (EfficientNet-Lite0, CPU) the process grew about twice the peak of live tensors
# (glibc's heap slack, oneDNN's workspaces); sizes derived from measured peaks keep that margin.
MARGIN = 2.0


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt parameters (glibc malloc.h)
# Any mallopt call freezes glibc's dynamic mmap threshold, so the block exits at the values that threshold reaches
# once large blocks have been freed (32 MB, trim at twice that), not at the 128 KB start, which would mmap and
# page-fault every later tensor over 128 KB (docs/performance.md, Memory).
_GLIBC_DEFAULTS = {_M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20, _M_MMAP_MAX: 65536}
_held = [0]  # how many keep_freed_memory blocks are open: the settings are process-wide, the outermost owns them
_plain = [0]  # how many glibc_defaults blocks are open: inside one, keep_freed_memory changes nothing
_held_lock = threading.Lock()


@contextlib.contextmanager
def keep_freed_memory(device: str | torch.device | None = None) -> Iterator[None]:
    """Inside the block glibc keeps freed blocks for reuse instead of unmapping each one over 32 MB.

    A pass allocates and frees the same large tensors for every batch; by default each is mmapped,
    page-faulted in and unmapped again, so the kernel's time rivals the arithmetic. Memory stays within
    the pass sizes (the same shapes recur); on exit the defaults return and the spare memory is trimmed.
    A no-op for a ``device`` other than the CPU; blocks nest (the outermost one sets and restores).
    """
    libc = _glibc()
    if libc is None or _plain[0] or (device is not None and torch.device(device).type != "cpu"):
        yield
        return
    with _held_lock:
        _held[0] += 1
        if _held[0] == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        with _held_lock:
            _held[0] -= 1
            if _held[0] == 0:
                for param, value in _GLIBC_DEFAULTS.items():
                    libc.mallopt(param, value)
                trim_heap()


@contextlib.contextmanager
def glibc_defaults() -> Iterator[None]:
    """Inside the block the engine leaves glibc's own settings alone (``keep_freed_memory`` does nothing): what the
    benchmarks compare the engine's setting against. Blocks nest."""
    with _held_lock:
        _plain[0] += 1
    try:
        yield
    finally:
        with _held_lock:
            _plain[0] -= 1


def keeping_freed_memory() -> bool:
    """Whether a ``keep_freed_memory`` block is open (glibc's settings are then the block's)."""
    return _held[0] > 0


def trim_heap() -> None:
    """Return glibc's free heap memory to the system (a no-op elsewhere), so that RSS shows what is in use."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages created while it is active that are still alive, and their peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[tuple[str, int]] = set()

    def _free(self, key: tuple[str, int], nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not t.is_meta:
                storage = t.untyped_storage()
                key = (str(storage.device), storage.data_ptr())
                if storage.nbytes() and key not in self._seen:
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._free, key, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def peak_live_bytes(make: Callable[[], T]) -> tuple[T, int]:
    """``make()``'s result and the peak bytes of the tensors it allocated (on any device) while it ran."""
    with LiveBytes() as live:
        result = make()
    return result, live.peak


@dataclass(frozen=True)
class CallPeak:
    """A call's measured peak as ``fixed + per_item * items`` bytes."""

    fixed: int
    per_item: int

    def items_within(self, budget_bytes: float) -> int:
        """Items per call that keep its peak within ``budget_bytes`` (with ``MARGIN``), at least one."""
        return int(max(1, (budget_bytes / MARGIN - self.fixed) // self.per_item))


def call_peak(make: Callable[[np.ndarray], T], ids: np.ndarray) -> tuple[CallPeak, T]:
    """``make``'s peak from calls on two and one of ``ids``, and the result of ``make(ids[:1])`` (the last call)."""
    _two, two = peak_live_bytes(lambda: make(ids[:2]))
    first, one = peak_live_bytes(lambda: make(ids[:1]))
    per_item = max(two - one, 1) if len(ids) > 1 else max(one, 1)
    return CallPeak(max(one - per_item, 0), per_item), first
