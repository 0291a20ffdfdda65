"""Where the engine runs: one resolved device per run, one way to compare devices, CUDA's precision and memory.

A tensor on the first GPU reports ``cuda:0`` while ``torch.device("cuda")`` has no index, and a tensor on the
CPU reports ``cpu`` while ``torch.device("cpu", 0)`` has one; ``==`` calls those different. Every device
decision therefore goes through ``resolve_device`` (once, at the top) and ``same_device``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from neurflow_graph.errors import ConfigError

# Of the free device memory when a run names no memory budget on CUDA: the rest is left to the CUDA context,
# the allocator's slack and kernel workspaces (cuDNN's, cuBLAS's), which the budget does not count.
CUDA_BUDGET_FRACTION = 0.6
CPU_BUDGET_MB = 1024.0  # the default working memory on a CPU (the heap factor of engine.attribution applies)


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot be used here, as the one line a user reads (an empty string when it can)."""
    if torch.cuda.is_available():
        return ""
    if torch.version.cuda is None:
        return (f"this torch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch "
                "(https://pytorch.org/get-started/locally/) or pass --device cpu")
    return "no CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES) or pass --device cpu"


def resolve_device(device: str | torch.device) -> torch.device:
    """The device a run uses, with its index when it is a GPU: ``auto``/``cuda`` -> ``cuda:N`` (the current one).

    ``cpu`` and ``cpu:N`` are kept as given (``same_device`` compares them with tensors' ``cpu``). An
    unavailable or out-of-range GPU is a one-line ConfigError naming the fix.
    """
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if resolved.type == "cuda":
        reason = cuda_unavailable_reason()
        if reason:
            raise ConfigError(f"device {str(device)!r} requested but {reason}")
        index = torch.cuda.current_device() if resolved.index is None else resolved.index
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r} names GPU {index} but only {torch.cuda.device_count()} "
                              f"GPU(s) are visible; pass --device cuda:0..{torch.cuda.device_count() - 1}")
        return torch.device("cuda", index)
    if resolved.type not in ("cpu", "meta"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return resolved


def device_index(device: torch.device) -> int:
    """A device's index, ``None`` read as the device a tensor would land on (the current GPU, the one CPU)."""
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if device.type == "cuda" and torch.cuda.is_available() else 0


def same_device(a: str | torch.device, b: str | torch.device) -> bool:
    """Whether two devices are the same one: same type and same index, a missing index meaning the default."""
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and device_index(a) == device_index(b)


def needs_pinning(source: torch.device, target: torch.device) -> bool:
    """Whether a copy from ``source`` to ``target`` should go through pinned memory: host tensors bound for a GPU."""
    return source.type == "cpu" and target.type == "cuda"


def module_device(module: torch.nn.Module) -> torch.device | None:
    """The one device holding all of ``module``'s parameters and buffers (None when it has none or several)."""
    devices = {(t.device.type, device_index(t.device)) for t in (*module.parameters(), *module.buffers())}
    if len(devices) != 1:
        return None
    kind, index = devices.pop()
    return torch.device(kind, index) if kind == "cuda" else torch.device(kind)


def on_device(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` when it already lives on ``device``, else a copy of it there: a model shared with the caller
    (a bridge shares the user's modules) is never moved in place."""
    import copy

    here = module_device(module)
    if here is not None and same_device(here, device):
        return module
    if here is None and not any(True for _ in (*module.parameters(), *module.buffers())):
        return module
    return copy.deepcopy(module).to(device)


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` in eval mode with no parameter requiring grad inside the block (backward passes then take the
    inputs' gradients only, and autograd saves nothing for the weights); the caller's mode and flags return after,
    since a bridge shares the caller's modules."""
    modes = [(m, m.training) for m in module.modules()]
    trained = [p for p in module.parameters() if p.requires_grad]
    module.eval()
    for param in trained:
        param.requires_grad_(False)
    try:
        yield module
    finally:
        for param in trained:
            param.requires_grad_(True)
        for m, mode in modes:
            m.train(mode)


@contextlib.contextmanager
def float32_matmuls(tf32: bool) -> Iterator[None]:
    """Inside the block CUDA's fp32 convolutions and matrix products use TF32 or not; the flags return after.

    PyTorch lets cuDNN use TF32 by default: a ResNet50 bridge then differs from strict fp32 by ~3e-4 relative,
    enough to change top-tau sets and to fail batch-norm folding's check. The flags are process-wide and
    harmless on a CPU, where they are set and restored all the same.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def default_budget_mb(device: torch.device) -> float:
    """The working-memory budget when none is given: 60% of the GPU's free memory on CUDA, 1024 MB on a CPU."""
    if device.type != "cuda":
        return CPU_BUDGET_MB
    free, _total = torch.cuda.mem_get_info(device)
    return CUDA_BUDGET_FRACTION * free / 2**20


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device running out of memory (torch's OutOfMemoryError, or its older message)."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(error, oom)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())
