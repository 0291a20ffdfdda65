"""Knockout (Definition 3's V_a with S zeroed): a target's activations over the whole probe set without neurons S.

The lower layer's feature maps of every patch are computed once and reused by every knockout; a
knockout reruns only the bridge between the two layers, or takes the per-channel-contribution
shortcut of contributions.py where that reproduces the bridge.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from neurflow_graph.engine.activations import feature_maps
from neurflow_graph.engine.devices import on_device
from neurflow_graph.engine.layers import bridge, neuron_activations, skip_of
from neurflow_graph.engine.layouts import channels_first_bridge, layout_of
from neurflow_graph.engine.patches import Patches

from .contributions import LinearFirst

_FLOATS_PER_CHUNK = 2**24  # bound on the elements of one knockout chunk (64 MB in float32)


class Knockout:
    """Activations of ``upper`` neurons over all P patches with chosen ``lower`` neurons zeroed.

    ``maps`` holds the lower layer's output for every patch, channels first (P×C×H×W, P×D×T or P×C),
    computed on first use (by the ``maps`` callable when given, e.g. to compute several layers in one pass).
    """

    def __init__(self, model: nn.Module, patches: Patches, lower: str, upper: str,
                 normalize: Callable[[torch.Tensor], torch.Tensor], input_size: int,
                 device: str | torch.device = "cpu", batch_size: int = 64,
                 maps: Callable[[], torch.Tensor] | None = None):
        self.lower, self.upper, self.device = lower, upper, torch.device(device)
        self._maps = maps
        self._model, self._patches, self._normalize = on_device(model, self.device).eval(), patches, normalize
        self._input_size, self._batch_size = input_size, batch_size
        example = normalize(patches.crops(np.arange(min(2, len(patches))), input_size)).to(self.device)
        sub = bridge(self._model, lower, upper, example)
        native = feature_maps(self._model, patches, lower, np.arange(min(2, len(patches))), normalize,
                              input_size, batch_size, self.device)
        self._lower = layout_of(self._model, lower, native)
        self.skip = skip_of(sub)  # the upper layer also reads a skip path around the lower one: held per patch
        upper_layout = layout_of(self._model, upper, sub(native, model_input=example) if self.skip else sub(native))
        # Maps are kept channels first (P×C×positions) whatever the layout: a knockout zeroes channel c
        # at every position or token. Built from the on-device model, it shares its modules (and their hooks).
        # Its passes run without gradients, and IG freezes the weights for its own (``devices.frozen``): the
        # caller's modules keep their grad flags.
        self.bridge = channels_first_bridge(sub, self._lower, upper_layout).eval()
        self.example = self._lower.to_channels_first(native)
        self.width = int(self.example.shape[1])
        self.n_patches = len(patches)

    @functools.cached_property
    def maps(self) -> torch.Tensor:
        """The lower layer's output for every patch (P×C×H×W or P×C), computed on first use."""
        if self._maps is not None:
            return self._lower.to_channels_first(self._maps())
        return self._lower.to_channels_first(feature_maps(
            self._model, self._patches, self.lower, np.arange(self.n_patches), self._normalize, self._input_size,
            self._batch_size, self.device))

    @functools.cached_property
    def sides(self) -> tuple[torch.Tensor, ...]:
        """The skip path's values for every patch (empty when the bridge reads none), computed on first use."""
        if self.skip is None:
            return ()
        parts = []
        for start in range(0, self.n_patches, self._batch_size):
            ids = np.arange(start, min(start + self._batch_size, self.n_patches))
            crops = self._normalize(self._patches.crops(ids, self._input_size)).to(self.device)
            parts.append(self.skip.sides(crops)[1])
        return tuple(torch.cat(s) for s in zip(*parts, strict=True))

    def bound(self, ids: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The cached maps of patches ``ids``, with their skip path bound to the bridge (for IG and knockouts)."""
        index = torch.as_tensor(np.asarray(ids), device=self.maps.device)
        x = self.maps[index]
        if self.skip is not None:
            self.skip.bind(self._lower.from_channels_first(x), tuple(s[index.to(s.device)] for s in self.sides))
        return x

    @functools.cached_property
    def fast(self) -> LinearFirst | None:
        """The per-channel-contribution shortcut, or None when the bridge does not allow it."""
        with torch.no_grad():
            return LinearFirst.build(self.bridge, self.maps)

    @torch.no_grad()
    def activations(self, targets: np.ndarray, keep: np.ndarray,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Target activations (T×M×P) with the neurons where ``keep`` is False zeroed.

        ``keep`` is M×C (the same M sets for every target) or T×M×C (sets per target).
        ``progress`` is called with the number of (target, set) pairs done.
        """
        targets = np.asarray(targets, dtype=np.int64)
        keep = np.asarray(keep, dtype=bool)
        if keep.shape[-1] != self.width or keep.ndim not in (2, 3) or (keep.ndim == 3 and len(keep) != len(targets)):
            raise ValueError(f"keep must be M×{self.width} or {len(targets)}×M×{self.width}, got {keep.shape}")
        n_sets = keep.shape[-2]
        report = progress or (lambda _n: None)
        if self.fast is not None:
            out = np.empty((len(targets), n_sets, self.n_patches), dtype=np.float32)
            for t, target in enumerate(targets):
                out[t] = self.fast.activations(int(target), keep if keep.ndim == 2 else keep[t])
                report(n_sets)
            return out
        if keep.ndim == 2:
            runs = self._bridge_runs(targets, keep, lambda n: report(n * len(targets)))
            return runs.transpose(2, 0, 1).copy()
        unique, inverse = np.unique(keep.reshape(-1, self.width), axis=0, return_inverse=True)
        scale = len(targets) * n_sets / len(unique)
        runs = self._bridge_runs(targets, unique, lambda n: report(round(n * scale)))  # U×P×T
        inverse = inverse.reshape(keep.shape[:2])
        return np.stack([runs[inverse[t], :, t] for t in range(len(targets))])

    def concept(self, targets: np.ndarray, k: int) -> np.ndarray:
        """Each target's top-k patches without any knockout (T×k), recomputed from the cached maps."""
        full = self.activations(targets, np.ones((1, self.width), dtype=bool))
        return top_k(full[:, 0], k)

    @torch.no_grad()
    def _bridge_runs(self, targets: np.ndarray, keep: np.ndarray, progress: Callable[[int], None]) -> np.ndarray:
        """Run the bridge once per set: U×P×T activations for the U rows of ``keep``."""
        n_sets, per_row = len(keep), int(np.prod(self.maps.shape[1:]))
        patch_chunk = max(1, min(self.n_patches, _FLOATS_PER_CHUNK // (8 * per_row)))
        set_chunk = max(1, _FLOATS_PER_CHUNK // (8 * per_row * patch_chunk))
        index = torch.as_tensor(targets, device=self.device)
        masks = torch.as_tensor(keep, dtype=self.maps.dtype, device=self.device)
        out = np.empty((n_sets, self.n_patches, len(targets)), dtype=np.float32)
        spatial = [1] * (self.maps.ndim - 2)
        for s0 in range(0, n_sets, set_chunk):
            m = masks[s0 : s0 + set_chunk]
            for p0 in range(0, self.n_patches, patch_chunk):
                x = self.bound(np.arange(p0, min(p0 + patch_chunk, self.n_patches)))
                batch = (m.view(len(m), 1, self.width, *spatial) * x.unsqueeze(0)).flatten(0, 1)
                y = neuron_activations(self.bridge(batch))[:, index]
                out[s0 : s0 + len(m), p0 : p0 + len(x)] = y.view(len(m), len(x), -1).float().cpu().numpy()
            progress(len(m))
        return out


def top_k(activations: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values along the last axis, largest first.

    The set is the engine's (``Activations.top_patches``): a tie at the k-th value goes to the lower index.
    """
    x = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float32))
    values, index = torch.topk(x, k, dim=-1)
    kth = values[..., -1:]
    ambiguous = ((x == kth).sum(-1) > (values == kth).sum(-1)).numpy()
    out = index.numpy()
    if ambiguous.any():
        out[ambiguous] = np.argsort(-activations[ambiguous], axis=-1, kind="stable")[..., :k]
    return out


def overlap(new_top: np.ndarray, concept: np.ndarray, n_patches: int) -> np.ndarray:
    """|V_a^knockout ∩ V_a| / |V_a| for T×M×k new concepts against the T×k reference concepts (T×M)."""
    member = np.zeros((len(concept), n_patches), dtype=bool)
    member[np.arange(len(concept))[:, None], concept] = True
    hits = np.take_along_axis(member[:, None, :], new_top, axis=-1)
    return hits.sum(axis=-1) / concept.shape[1]


def loss(knock: Knockout, targets: np.ndarray, concept: np.ndarray, keep: np.ndarray,
         progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The paper's L(S, a) = |V_a^S̄ ∩ V_a| / |V_a| for each target and knocked-out set (T×M)."""
    acts = knock.activations(targets, keep, progress)
    return overlap(top_k(acts, concept.shape[1]), concept, knock.n_patches)
