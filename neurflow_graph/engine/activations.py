"""Step 2's inputs: every neuron's activation on every patch, and a layer's feature maps for chosen patches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurflow_graph.engine.layers import _StopForward, capture
from neurflow_graph.engine.layouts import layout_of
from neurflow_graph.engine.memory import call_peak, keep_freed_memory
from neurflow_graph.engine.patches import Patches

Normalize = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activations:
    """``values[layer]`` is a P×C float32 array: neuron activations (spatial means) for all P patches."""

    values: dict[str, np.ndarray]

    def top_patches(self, layer: str, neurons: Sequence[int], k: int) -> np.ndarray:
        """The k patches with the highest activation for each neuron, best first (T×k); ties by patch id."""
        acts = self.values[layer][:, np.asarray(neurons, dtype=np.int64)].T  # T×P
        order = np.argsort(-acts, axis=1, kind="stable")
        return order[:, :k]


def _run_until(model: nn.Module, batch: torch.Tensor, layers: Sequence[str], last: str) -> dict[str, torch.Tensor]:
    """Forward ``batch`` recording ``layers`` and stop as soon as ``last`` has run."""
    with capture(model, layers) as seen:
        stopper = dict(model.named_modules())[last].register_forward_hook(_stop)
        try:
            model(batch)
        except _StopForward:
            pass
        finally:
            stopper.remove()
    return seen


def _stop(*_args) -> None:
    raise _StopForward


@torch.no_grad()
def compute_activations(
    model: nn.Module,
    patches: Patches,
    layers: Sequence[str],
    normalize: Normalize,
    input_size: int,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
    memory_budget_mb: float | None = None,
) -> Activations:
    """Activations of every neuron of ``layers`` on every patch; ``progress`` is called with each batch's size.

    With ``memory_budget_mb``, batches are also cut to what fits it, from the forward's measured peak.
    """
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    last = layers[0]  # the logit layer runs last

    def run(ids: np.ndarray) -> dict[str, torch.Tensor]:
        return _run_until(model, normalize(patches.crops(ids, input_size)).to(device), layers, last)

    with keep_freed_memory(device):  # every batch allocates the same large tensors again
        if memory_budget_mb is not None:
            peak, _first = call_peak(run, np.arange(min(2, len(patches))))
            batch_size = min(batch_size, peak.items_within(memory_budget_mb * 2**20))
        for start in range(0, len(patches), batch_size):
            ids = np.arange(start, min(start + batch_size, len(patches)))
            seen = run(ids)
            for name in layers:
                chunks[name].append(layout_of(model, name, seen[name]).activations(seen[name]).float().cpu().numpy())
            if progress:
                progress(len(ids))
    return Activations({name: np.concatenate(parts) for name, parts in chunks.items()})


@torch.no_grad()
def feature_maps(
    model: nn.Module,
    patches: Patches,
    layer: str,
    ids: np.ndarray,
    normalize: Normalize,
    input_size: int,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The full output of ``layer`` (B×C×H×W or B×C) for the patches ``ids``, on ``device``."""
    parts = []
    with keep_freed_memory(device):
        for start in range(0, len(ids), batch_size):
            batch = normalize(patches.crops(ids[start : start + batch_size], input_size)).to(device)
            parts.append(_run_until(model, batch, [layer], layer)[layer].float())
    return torch.cat(parts)
