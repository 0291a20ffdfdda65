"""Predictions of a model under many channel masks at once: each mask zeroes whole feature maps in named layers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from neurflow_graph.engine.devices import on_device
from neurflow_graph.engine.layouts import layout_of, module_layout


def keep_mask(width: int, neurons: np.ndarray, mode: str) -> np.ndarray:
    """Boolean keep-vector of a layer: ``mask`` zeroes ``neurons``, ``retain`` zeroes every other neuron."""
    chosen = np.zeros(width, dtype=bool)
    chosen[np.asarray(neurons, dtype=np.int64)] = True
    if mode == "mask":
        return ~chosen
    if mode == "retain":
        return chosen
    raise ValueError(f"mode must be 'mask' or 'retain', got {mode!r}")


@contextlib.contextmanager
def _row_masks(model: nn.Module, layers: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Multiply each layer's output, row by row, by ``current[layer]`` (B×C) while inside the block."""
    current: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def hook_for(name: str):
        def hook(module, _inputs, output):
            return module_layout(module, output, name).keep(output, current[name])
        return hook

    with contextlib.ExitStack() as hooks:  # a torch hook handle removes its hook when its block exits
        for name in layers:
            hooks.enter_context(modules[name].register_forward_hook(hook_for(name), prepend=True))
        yield current


def predict_masked(model: nn.Module, inputs: torch.Tensor, keep: dict[str, np.ndarray],
                   device: str | torch.device = "cpu", batch_size: int = 256,
                   progress: Callable[[int], None] | None = None, forward: nn.Module | None = None,
                   start: str | None = None) -> np.ndarray:
    """Top-1 predictions (M×N) of N inputs under M masks (``masked_outputs`` with the argmax)."""
    return masked_outputs(model, inputs, keep, device, batch_size, progress, forward, start,
                          reduce=lambda logits: logits.argmax(dim=1))


@torch.no_grad()
def masked_outputs(model: nn.Module, inputs: torch.Tensor, keep: dict[str, np.ndarray],
                   device: str | torch.device = "cpu", batch_size: int = 256,
                   progress: Callable[[int], None] | None = None, forward: nn.Module | None = None,
                   start: str | None = None,
                   reduce: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits.float()) -> np.ndarray:
    """``reduce(logits)`` of N inputs under M masks, as an M×N×… array (default: the logits, M×N×K).

    ``keep[layer]`` is M×C booleans: False zeroes that channel's feature map for that mask. ``inputs``
    are normalised images (N×C×S×S), or, with ``start``, that layer's outputs, and ``forward`` is then
    the bridge from ``start`` to the logits (``slicing.from_layer``): the masks of ``start`` are applied to
    ``inputs`` directly and the layers below it are not recomputed for every mask; ``model`` must then already
    be on ``device``, the slice sharing its modules. ``progress(m)`` is called after each pass with the number
    of masks it finished. The caller's model is never moved: on another device a copy runs.
    """
    hooked = [name for name in keep if name != start]
    n_masks = len(next(iter(keep.values())))
    n_inputs = len(inputs)
    per_pass = max(1, batch_size // n_inputs)
    input_chunk = min(n_inputs, batch_size)
    masks = {name: torch.as_tensor(np.asarray(value), dtype=torch.float32, device=device)
             for name, value in keep.items()}
    out: list[np.ndarray] = []
    placed = on_device(model, device).eval()  # the caller's model is not moved
    if forward is not None and placed is not model:
        raise ValueError("pass the model already on the device (devices.on_device) with its forward slice: the "
                         "slice shares its modules, and the masks hook the model's")
    model = placed
    run = (forward or model).eval()
    with _row_masks(model, hooked) as current:
        for m0 in range(0, n_masks, per_pass):
            m1 = min(n_masks, m0 + per_pass)
            parts = []
            for i0 in range(0, n_inputs, input_chunk):
                x = inputs[i0 : i0 + input_chunk].to(device)
                for name in hooked:
                    current[name] = masks[name][m0:m1].repeat_interleave(len(x), dim=0)
                batch = x.repeat(m1 - m0, *([1] * (x.ndim - 1)))
                if start in masks:
                    row = masks[start][m0:m1].repeat_interleave(len(x), dim=0)
                    batch = layout_of(model, start, batch).keep(batch, row)
                reduced = reduce(run(batch))
                parts.append(reduced.reshape(m1 - m0, len(x), *reduced.shape[1:]).cpu().numpy())
            out.append(np.concatenate(parts, axis=1))
            if progress:
                progress(m1 - m0)
    return np.concatenate(out, axis=0)
