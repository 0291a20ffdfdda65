"""The top of a model, from one layer's output to the logits, with chosen layers kept as module calls.

Fidelity masks layers from the logit down to some layer L; everything below L is the same for every
mask, so it is computed once and only the part above L runs per mask. The layers in between must
stay module calls (not traced through) so that the masking hooks on them fire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from neurflow_graph.engine.devices import on_device
from neurflow_graph.engine.layers import capture, fx_slice


def model_top(model: nn.Module, start: str, layers: Sequence[str], example: torch.Tensor,
              reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> nn.Module | None:
    """A module mapping ``start``'s output to the model's output, calling each of ``layers`` once as a module.

    Returns None when the model cannot be traced or sliced there, or the slice does not reproduce the
    model on ``example`` (a small input batch); callers then run the whole model. ``reference`` is
    (``start``'s output, the model's output) on ``example`` when the caller has them already.
    """
    top, _why = fx_slice(model, start, None, keep=layers)
    return top if top is not None and _reproduces(model, top, start, layers, example, reference) else None


@torch.no_grad()
def _reproduces(model: nn.Module, top: nn.Module, start: str, layers: Sequence[str], example: torch.Tensor,
                reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> bool:
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    fired: list[str] = []
    try:
        with contextlib.ExitStack() as hooks:
            if reference is None:
                hooks.enter_context(modules[start].register_forward_hook(
                    lambda _m, _i, o: seen.setdefault("start", o)))
                expected = model(example)
            else:
                seen["start"], expected = reference
            for name in layers:
                hooks.enter_context(modules[name].register_forward_hook(lambda *_a, _n=name: fired.append(_n)))
            got = top(seen["start"])
    except Exception:  # noqa: BLE001 - a slice that fails to run is not used
        return False
    return sorted(fired) == sorted(layers) and torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def from_layer(model: nn.Module, inputs: torch.Tensor, start: str, layers: Sequence[str] = (),
               device: str | torch.device = "cpu", batch_size: int = 256
               ) -> tuple[nn.Module | None, str | None, torch.Tensor]:
    """(model top from ``start``, ``start``, its outputs for ``inputs``): what ``predict_masked`` needs to run
    only the part above ``start`` for every mask; (None, None, inputs) when the model cannot be sliced there.

    ``inputs`` are normalised model inputs (N×C×S×S); ``layers`` (above ``start``) stay module calls so masks
    on them apply. The slice is used only when it reproduces the model's logits (``model_top``).
    """
    model = on_device(model, device).eval()  # the caller's model is not moved; pass it on the device to share it
    top = model_top(model, start, layers, inputs[:2].to(device))
    if top is None:
        return None, None, inputs
    with capture(model, [start]) as seen:
        outputs = [(model(batch.to(device)), seen[start])[1] for batch in inputs.split(batch_size)]
    return top, start, torch.cat(outputs)
