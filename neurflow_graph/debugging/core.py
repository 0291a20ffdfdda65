"""Image debugging (paper section 5.1): score images against neuron groups, mask groups, compare with random masks.

For a class and one layer of its circuit:
- the group-confidence metric `M(v, S_G) = exp(mean_{s in S_G} log(max(φ_s(v), 0) / max_D φ_s + ε))` of every
  image v for every group G (φ_s the spatial-mean activation of neuron s; max_D φ_s its `activation_max` over
  the run's patches), high only when every neuron of the group fires;
- the drop of the class logit and probability when the group's neurons are masked (feature maps set to 0),
  per image, against masking random neuron sets of the same size from the same layer (one per seed, drawn
  from the layer's other channels); the layer's outputs are computed once and each mask runs only the model
  above it (torch.fx slice, checked against the model's logits), as in `evaluate fidelity`;
- the images whose logit drops most when a group is masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from neurflow_graph.engine.devices import on_device
from neurflow_graph.engine.layers import capture
from neurflow_graph.engine.layouts import layout_of
from neurflow_graph.errors import ConfigError, DataError
from neurflow_graph.evaluation.masking import keep_mask, masked_outputs
from neurflow_graph.evaluation.slicing import from_layer
from neurflow_graph.records import Group

Normalize = Callable[[torch.Tensor], torch.Tensor]
DEFAULT_EPS = 1e-6


def group_confidence(activations: np.ndarray | torch.Tensor, activation_max: Sequence[float],
                     eps: float = DEFAULT_EPS) -> np.ndarray:
    """M(v, S_G) for N images: `activations` is N×|S_G| (spatial means), `activation_max` one value per neuron.

    A neuron whose activation_max is not positive never fired on the run's patches: its ratio counts as 0.
    Returns an (N,) float64 array in [ε-ish, ∞) (above 1 when an image beats every patch of the run).
    """
    acts = activations.detach().cpu().double().numpy() if isinstance(activations, torch.Tensor) \
        else np.asarray(activations, dtype=np.float64)
    top = np.asarray(activation_max, dtype=np.float64)
    if acts.ndim != 2 or acts.shape[1] != top.shape[0]:
        raise ConfigError(f"activations must be N×{top.shape[0]} (one column per neuron), got {acts.shape}")
    ratio = np.where(top > 0, np.maximum(acts, 0.0) / np.where(top > 0, top, 1.0), 0.0)
    return np.exp(np.mean(np.log(ratio + eps), axis=1))


@dataclass(frozen=True)
class GroupDebug:
    """What one group does on the image set: its metric per image and the effect of masking it.

    Arrays over images are (N,); arrays over random draws are (seeds,) means over the images.
    """

    group: Group
    metric: np.ndarray
    logit_drop: np.ndarray
    prob_drop: np.ndarray
    flipped: int
    random_sets: tuple[tuple[int, ...], ...]
    random_logit_drop: np.ndarray
    random_prob_drop: np.ndarray
    random_flipped: np.ndarray
    top_images: tuple[int, ...]

    @property
    def mean_logit_drop(self) -> float:
        return float(self.logit_drop.mean())

    @property
    def mean_prob_drop(self) -> float:
        return float(self.prob_drop.mean())

    @property
    def share_random_worse(self) -> float:
        """Share of the random draws whose mean probability drop is smaller than the group's."""
        return float(np.mean(self.random_prob_drop < self.mean_prob_drop))


@dataclass(frozen=True)
class DebugResult:
    """Image debugging of one layer of a class's circuit on one image set (N images, C×H×W in [0, 1])."""

    class_index: int
    layer: str
    layer_width: int
    images: torch.Tensor
    sources: tuple[str, ...]
    sha256: tuple[str, ...]
    labels: tuple[int, ...] | None
    logit: np.ndarray
    prob: np.ndarray
    predicted: np.ndarray
    groups: tuple[GroupDebug, ...]
    seeds: int
    seed: int
    eps: float
    run_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def false_positives(self) -> np.ndarray:
        """Indices of images predicted as the class whose label is another class (empty without labels)."""
        if self.labels is None:
            return np.zeros(0, dtype=np.int64)
        labels = np.asarray(self.labels)
        return np.flatnonzero((self.predicted == self.class_index) & (labels != self.class_index))


def debug_images(
    model: nn.Module,
    images: torch.Tensor,
    groups: Sequence[Group],
    class_index: int,
    *,
    normalize: Normalize,
    seeds: int = 5,
    seed: int = 0,
    top: int = 8,
    eps: float = DEFAULT_EPS,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    sources: Sequence[str] | None = None,
    sha256: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    run_id: str | None = None,
    progress: bool = False,
    known: Mapping[str, Mapping[str, Any]] | None = None,
) -> DebugResult:
    """Score `images` (N×C×H×W in [0, 1]) against every group of one layer and mask each group (module docstring).

    Random sets: for seed s the draw uses `numpy.random.default_rng((seed, s, group_index))`, so results repeat.
    Masks run through `evaluation.masking.masked_outputs` on the model sliced above the layer, the mechanism
    `evaluate fidelity` uses; `progress` shows a bar per group counting its masks. `known` (group id -> the
    run's stored per-group faithfulness, `debugging.faithfulness.known_random_figures`) gives the random draws'
    figures of those groups when they were measured on these images with these seeds: only the group is masked.
    """
    _check(images, groups, class_index, seeds, top, batch_size)
    layer = groups[0].layer
    model = on_device(model, device).eval()  # once: the slice below shares this copy; the caller's is not moved
    logits, acts = _forward(model, images, normalize, layer, batch_size, device)
    if class_index >= logits.shape[1]:
        raise ConfigError(f"class index {class_index} is out of range: the model has {logits.shape[1]} outputs")
    width = acts.shape[1]
    base_logit, base_prob = _class_scores(logits, class_index)
    predicted = logits.argmax(dim=1).numpy()
    # Every mask of this layer runs only the model above it (as `evaluate fidelity` does), when it can be sliced.
    forward, start, inputs = from_layer(model, torch.cat([normalize(b) for b in images.split(batch_size)]), layer,
                                        device=device, batch_size=batch_size)
    results = []
    for group in groups:
        channels = list(group.channels)
        if max(channels) >= width:
            raise ConfigError(f"group {group.group_id} names channel {max(channels)} but layer {layer} has {width} "
                              "channels: is the model the one the run was computed with?")
        metric = group_confidence(acts[:, channels], group.activation_max, eps)
        pool = np.setdiff1d(np.arange(width), channels)
        if len(pool) < len(channels):
            pool = np.arange(width)
        rand_sets = [tuple(int(c) for c in np.sort(np.random.default_rng((seed, s, group.group_index)).choice(
            pool, size=len(channels), replace=False))) for s in range(seeds)]
        stored = (known or {}).get(group.group_id)
        keep = np.stack([keep_mask(width, np.asarray(chosen, dtype=np.int64), "mask")
                         for chosen in ((channels,) if stored else (channels, *rand_sets))])
        with tqdm(total=len(keep), desc=f"mask {group.group_id} ({len(channels)} neurons, {len(images)} images)",
                  unit="mask", disable=not progress, leave=False, dynamic_ncols=True) as bar:
            out = masked_outputs(model, inputs, {layer: keep}, device, batch_size, bar.update, forward, start)
        masked = torch.from_numpy(out[0])
        logit, prob = _class_scores(masked, class_index)
        rand_logit, rand_prob, rand_flip = [], [], []
        if stored:
            rand_logit, rand_prob = list(stored["random_logit_drops"]), list(stored["random_prob_drops"])
            rand_flip = list(stored["random_flipped"])
        for rmasked in (torch.from_numpy(o) for o in out[1:]):
            rl, rp = _class_scores(rmasked, class_index)
            rand_logit.append(float((base_logit - rl).mean()))
            rand_prob.append(float((base_prob - rp).mean()))
            rand_flip.append(_flipped(predicted, rmasked, class_index))
        drop = base_logit - logit
        order = np.argsort(-drop, kind="stable")[:top]
        results.append(GroupDebug(
            group=group, metric=metric, logit_drop=drop, prob_drop=base_prob - prob,
            flipped=_flipped(predicted, masked, class_index), random_sets=tuple(rand_sets),
            random_logit_drop=np.asarray(rand_logit), random_prob_drop=np.asarray(rand_prob),
            random_flipped=np.asarray(rand_flip), top_images=tuple(int(i) for i in order),
        ))
    n = images.shape[0]
    return DebugResult(
        class_index=class_index, layer=layer, layer_width=width, images=images.detach().cpu(),
        sources=tuple(sources) if sources is not None else tuple(f"image#{i}" for i in range(n)),
        sha256=tuple(sha256) if sha256 is not None else (),
        labels=tuple(int(v) for v in labels) if labels is not None else None,
        logit=base_logit, prob=base_prob, predicted=predicted, groups=tuple(results), seeds=seeds, seed=seed,
        eps=eps, run_id=run_id,
    )


def _check(images: torch.Tensor, groups: Sequence[Group], class_index: int, seeds: int, top: int,
           batch_size: int) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        raise DataError("images must be a non-empty N×C×H×W tensor in [0, 1]")
    if not groups:
        raise ConfigError("no neuron groups to debug; pick a layer of the circuit that has groups")
    layers = {g.layer for g in groups}
    if len(layers) != 1:
        raise ConfigError(f"groups must come from one layer, got {', '.join(sorted(layers))}")
    for name, value, low in (("seeds", seeds, 1), ("top", top, 1), ("batch_size", batch_size, 1),
                             ("class_index", class_index, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    for g in groups:
        if not g.channels or len(g.channels) != len(g.activation_max):
            raise ConfigError(f"group {g.group_id} needs one activation_max per channel, got "
                              f"{len(g.channels)} channels and {len(g.activation_max)} values")


@torch.no_grad()
def _forward(model: nn.Module, images: torch.Tensor, normalize: Normalize, layer: str, batch_size: int,
             device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Unmasked logits (N×K) and the layer's neuron activations (N×C)."""
    logits, acts = [], []
    with capture(model, [layer]) as seen:
        for batch in images.split(batch_size):
            logits.append(model(normalize(batch.to(device))).float().cpu())
            acts.append(layout_of(model, layer, seen[layer]).activations(seen[layer]).float().cpu())
    return torch.cat(logits), torch.cat(acts)


def _class_scores(logits: torch.Tensor, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    return (logits[:, class_index].double().numpy(),
            logits.double().softmax(dim=1)[:, class_index].numpy())


def _flipped(predicted: np.ndarray, masked_logits: torch.Tensor, class_index: int) -> int:
    after = masked_logits.argmax(dim=1).numpy()
    return int(((predicted == class_index) & (after != class_index)).sum())
