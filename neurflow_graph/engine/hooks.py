"""What `layers` (bridges) and `layouts` both use, so that neither imports the other: a named module, the
capture of layer outputs, and the bridge that holds a skip path around its lower layer."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence

import torch
from torch import fx, nn

from neurflow_graph.errors import LayerError


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise LayerError(f"unknown layer {name!r}; {hint}valid layer names: {', '.join(names)}")
    return modules[name]


@contextlib.contextmanager
def capture(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes; hooks are removed on exit, even on error."""
    outputs: dict[str, torch.Tensor] = {}
    with contextlib.ExitStack() as hooks:  # a torch hook handle removes its hook when its block exits
        for name in layers:
            hooks.enter_context(_module(model, name).register_forward_hook(_recorder(outputs, name)))
        yield outputs


def _recorder(outputs: dict[str, torch.Tensor], name: str):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise LayerError(f"layer {name!r} returns {type(output).__name__}, not a tensor; pick another layer")
        outputs[name] = output

    return hook


class SkipBridge(nn.Module):
    """A sub-network whose upper layer also reads activations that bypass the lower one, held per input.

    ``core(x, *sides)`` is the slice; ``context(model_input)`` gives (lower output, *sides). Call it with
    ``model_input`` (one row per row of ``x``), or ``bind`` the lower outputs and sides of m inputs first:
    a batch of R×m rows is then read as R variants of those m rows in order (row r belongs to input
    r mod m), as the IG engine's steps and the knockouts' masks come, and each row is checked to be a
    per-neuron multiple of its input's lower output (a misaligned batch is an error, not a wrong result).
    With ``relative`` the output is taken relative to the zero-lower baseline of each input,
    f(x, sides) - f(0, sides), so that integrated gradients' completeness holds per input.
    """

    def __init__(self, core: fx.GraphModule, context: fx.GraphModule, channel_axis: int = 1):
        super().__init__()
        self.core, self.context, self.channel_axis = core, context, channel_axis
        self.relative = False
        self._bound: tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor | None] | None = None

    @torch.no_grad()
    def sides(self, model_input: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """(lower output, side inputs) of the model inputs, in batches."""
        parts = [self.context(chunk) for chunk in model_input.split(batch_size)]
        return torch.cat([p[0] for p in parts]), tuple(torch.cat(s) for s in zip(*(p[1:] for p in parts), strict=True))

    @torch.no_grad()
    def bind(self, lower: torch.Tensor, sides: Sequence[torch.Tensor]) -> None:
        """Hold ``sides`` (and the baseline, when relative) for the m inputs whose lower outputs are ``lower``."""
        sides = tuple(s.detach() for s in sides)
        offset = self.core(torch.zeros_like(lower), *sides).detach() if self.relative else None
        self._bound = (lower.detach(), sides, offset)

    def forward(self, x: torch.Tensor, model_input: torch.Tensor | None = None) -> torch.Tensor:
        if model_input is not None:
            _low, sides = self.sides(model_input)
            out = self.core(x, *sides)
            return out - self.core(torch.zeros_like(x), *sides) if self.relative else out
        if self._bound is None:
            raise LayerError("this sub-network reads a skip path around its lower layer; pass model_input=... or "
                             "bind(lower, sides) the batch's inputs first")
        lower, sides, offset = self._bound
        repeats = self._repeats(x, lower)
        out = self.core(x, *(s.repeat(repeats, *([1] * (s.ndim - 1))) for s in sides))
        return out - offset.repeat(repeats, *([1] * (offset.ndim - 1))) if offset is not None else out

    @torch.no_grad()
    def _repeats(self, x: torch.Tensor, lower: torch.Tensor) -> int:
        m = lower.shape[0]
        if x.shape[0] % m or x.shape[1:] != lower.shape[1:]:
            raise LayerError(f"a batch of shape {tuple(x.shape)} is not rows of the {m} bound inputs of shape "
                             f"{tuple(lower.shape[1:])}; bind the inputs of this batch")
        repeats = x.shape[0] // m
        rows = x.detach().float().movedim(self.channel_axis, 1).reshape(repeats, m, x.shape[self.channel_axis], -1)
        own = lower.float().movedim(self.channel_axis, 1).reshape(1, m, x.shape[self.channel_axis], -1)
        scale = (rows * own).sum(-1, keepdim=True) / (own * own).sum(-1, keepdim=True).clamp_min(1e-30)
        if (rows - scale * own).abs().amax() > 1e-3 * rows.abs().amax() + 1e-6:
            raise LayerError("a batch row is not a per-neuron multiple of its bound input's lower output (row r "
                             "must belong to input r mod m); bind the inputs of this batch")
        return repeats


def skip_of(module: nn.Module) -> SkipBridge | None:
    """The ``SkipBridge`` a sub-network is or wraps (a layout view), or None."""
    if isinstance(module, SkipBridge):
        return module
    inner = getattr(module, "bridge", None)
    return inner if isinstance(inner, SkipBridge) else None
