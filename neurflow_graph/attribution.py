"""Step 3's importance scores: integrated gradients of many target neurons over their patches, batched.

Each (patch, step) forward pass is shared by every target whose concept contains the patch; the
gradients of the different targets are taken from that one graph. Zero baseline, as in the paper.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .layers import neuron_activations

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gausslegendre_geometric")
_GEOMETRIC_DECADES = 6
PRECISIONS = ("fp32", "bf16", "fp16")
ADAPTIVE_LADDER = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and weights summing to 1 for integrating along the straight path.

    Captum's rules, except ``riemann_trapezoid``: Captum's trapezoid weights sum to (n-1)/n, which
    breaks completeness; this is the textbook trapezoid rule (Captum's result times n/(n-1)).
    ``gausslegendre_geometric`` (not Captum's) splits [0, 1] at 1e-6, 1e-5, ..., 0.1 and puts Gauss-Legendre
    points in each piece: a layer norm at the start of a transformer block makes the integrand change
    within alpha ~ 1e-3 of the zero baseline, which evenly spread points miss (completeness then fails).
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(n_steps, int) or n_steps < 1 or (method == "riemann_trapezoid" and n_steps < 2):
        raise ConfigError(f"n_steps must be a positive integer (>= 2 for riemann_trapezoid), got {n_steps!r}")
    n = n_steps
    if method == "gausslegendre_geometric":
        edges = np.concatenate([[0.0], np.logspace(-_GEOMETRIC_DECADES, 0, _GEOMETRIC_DECADES + 1)])
        counts = np.full(len(edges) - 1, n // (len(edges) - 1))
        counts[: n % (len(edges) - 1)] += 1
        points, weights = [], []
        for a, b, count in zip(edges[:-1], edges[1:], counts, strict=True):
            if count:
                nodes, w = np.polynomial.legendre.leggauss(int(count))
                points.append(a + (b - a) * 0.5 * (nodes + 1.0))
                weights.append((b - a) * 0.5 * w)
        return np.concatenate(points), np.concatenate(weights)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, n), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n) + offset) / n, np.full(n, 1.0 / n)


@dataclass(frozen=True)
class Attribution:
    """Integrated gradients of ``targets`` (upper-layer neurons) w.r.t. every lower-layer neuron.

    ``scores[t, i, c]``: attribution of lower neuron ``c`` to target ``targets[t]`` at patch
    ``patch_ids[t, i]``, as the spatial mean of the attribution map (shape T×k×C). ``delta`` is the
    completeness gap sum(attribution) - (f(x) - f(0)) per (target, patch), ``output_diff`` is f(x) - f(0).
    """

    targets: np.ndarray
    patch_ids: np.ndarray
    scores: np.ndarray
    delta: np.ndarray
    output_diff: np.ndarray
    n_steps: int
    method: str
    precision: str

    @property
    def completeness_error(self) -> float:
        """Total |completeness gap| relative to total |f(x) - f(0)| over all (target, patch) pairs."""
        return float(np.abs(self.delta).sum() / max(np.abs(self.output_diff).sum(), 1e-12))


class IntegratedGradients:
    """Integrated gradients between two layers for many targets at once.

    Args:
        n_steps: quadrature points per path, or ``"auto"`` to pick the smallest count on
            ``ADAPTIVE_LADDER`` whose completeness error is at most ``tolerance``.
        method: one of ``METHODS`` (Captum's names; ``gausslegendre`` is Captum's default).
        precision: ``fp32``, or ``bf16``/``fp16`` autocast for the forward and backward passes.
        internal_batch_size: (patch, step) rows per forward pass; ``None`` sizes passes from
            ``memory_budget_mb``. Either way memory is bounded whatever the number of targets.
        device: where the passes run.
        tolerance: completeness error to reach when ``n_steps="auto"``.
        memory_budget_mb: working memory per pass when ``internal_batch_size`` is None.
    """

    def __init__(
        self,
        n_steps: int | str = 50,
        method: str = "gausslegendre",
        precision: str = "fp32",
        internal_batch_size: int | None = None,
        device: str | torch.device = "cpu",
        tolerance: float | None = None,
        memory_budget_mb: float = 1024,
    ):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if n_steps == "auto":
            if tolerance is None or not tolerance > 0:
                raise ConfigError(f"n_steps='auto' needs a positive tolerance, got {tolerance!r}")
            quadrature(method, 2)  # validates the method
        else:
            quadrature(method, n_steps)  # validates the method and n_steps
        if internal_batch_size is not None and (not isinstance(internal_batch_size, int) or internal_batch_size < 1):
            raise ConfigError(f"internal_batch_size must be a positive integer or None, got {internal_batch_size!r}")
        if not memory_budget_mb > 0:
            raise ConfigError(f"memory_budget_mb must be positive, got {memory_budget_mb!r}")
        device = torch.device(device)
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
        self.n_steps, self.method, self.precision = n_steps, method, precision
        self.internal_batch_size, self.device, self.tolerance = internal_batch_size, device, tolerance
        self.memory_budget_mb = memory_budget_mb

    def rows_per_pass(self, example: torch.Tensor) -> int:
        """(patch, step) rows per forward pass: the fixed batch size, or what fits the memory budget.

        The budget assumes a pass keeps about 24 input-sized tensors per row alive (activations
        saved for backward, the gradient and the running sum).
        """
        if self.internal_batch_size is not None:
            return self.internal_batch_size
        row_bytes = example[0].numel() * 4 * 24
        return int(max(1, min(8192, self.memory_budget_mb * 2**20 // row_bytes)))

    def attribute(
        self,
        forward: nn.Module,
        inputs: Callable[[np.ndarray], torch.Tensor],
        targets: Sequence[int],
        patch_ids: np.ndarray,
        progress: Callable[[int], None] | None = None,
    ) -> Attribution:
        """Attribute each target over its own patches; ``progress`` is called with each chunk's pair count.

        Args:
            forward: maps lower-layer outputs (B×C×H×W or B×C) to upper-layer outputs.
            inputs: returns the lower-layer outputs of the given patch ids (B×C×H×W or B×C).
            targets: upper-layer neuron indices, T of them.
            patch_ids: T×k patch ids, row t being the patches of ``targets[t]``.
            progress: optional callback, e.g. a progress bar's ``update``.
        """
        targets = np.asarray(targets, dtype=np.int64)
        patch_ids = np.asarray(patch_ids, dtype=np.int64)
        if patch_ids.ndim != 2 or len(patch_ids) != len(targets):
            raise ConfigError(f"patch_ids must be T×k with T={len(targets)}, got shape {patch_ids.shape}")
        if self.n_steps != "auto":
            return self._attribute(forward, inputs, targets, patch_ids, self.n_steps, progress)
        return self._adaptive(forward, inputs, targets, patch_ids, progress)

    def _adaptive(self, forward, inputs, targets, patch_ids, progress) -> Attribution:
        # Probe a few patches per target to pick the step count, then run everything at that count,
        # stepping up again if the full run misses the tolerance.
        probe = patch_ids[:, : min(4, patch_ids.shape[1])]
        ladder = list(ADAPTIVE_LADDER)
        first = next(
            (i for i, n in enumerate(ladder)
             if self._attribute(forward, inputs, targets, probe, n).completeness_error <= self.tolerance),
            len(ladder) - 1,
        )
        for n in ladder[first:]:
            result = self._attribute(forward, inputs, targets, patch_ids, n, progress)
            if result.completeness_error <= self.tolerance:
                break
        return result

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _attribute(self, forward, inputs, targets, patch_ids, n_steps: int, progress=None) -> Attribution:
        alphas, weights = (torch.as_tensor(a, dtype=torch.float32, device=self.device)
                           for a in quadrature(self.method, n_steps))
        # Pairs (target row, position) grouped by patch; patches with most pairs first for balanced chunks.
        uniq, inverse = np.unique(patch_ids, return_inverse=True)
        inverse = inverse.reshape(patch_ids.shape)
        rows, cols = np.nonzero(np.ones_like(patch_ids, dtype=bool))
        owner = inverse[rows, cols]
        by_patch = np.argsort(owner, kind="stable")
        counts = np.bincount(owner, minlength=len(uniq))
        starts = np.concatenate([[0], np.cumsum(counts)])
        order = np.argsort(-counts, kind="stable")

        scores = delta = diff = None
        rows_per_pass = self.rows_per_pass(inputs(uniq[order[:1]]))
        per_chunk = max(1, rows_per_pass // n_steps)
        steps_per_pass = max(1, min(n_steps, rows_per_pass // per_chunk))
        forward = forward.to(self.device).eval()
        for c0 in range(0, len(order), per_chunk):
            chunk = order[c0 : c0 + per_chunk]
            x = inputs(uniq[chunk]).to(self.device, torch.float32)
            slots = _slots(chunk, counts, starts, by_patch, rows, cols, targets, self.device)
            acc = self._integrate(forward, x, slots.target, alphas, weights, steps_per_pass)
            attr = acc * x.unsqueeze(0)  # R×m×C(×H×W)
            chunk_scores = attr if attr.ndim == 3 else attr.flatten(3).mean(-1)  # mean over positions or tokens
            total = attr.flatten(2).sum(-1)
            with torch.no_grad():
                y1 = neuron_activations(forward(x)).float()
                y0 = neuron_activations(forward(torch.zeros_like(x[:1]))).float()
            t_idx = slots.target.clamp(min=0)
            out_diff = y1.gather(1, t_idx.T).T - y0[0, t_idx]  # R×m
            if scores is None:
                scores = np.zeros((*patch_ids.shape, chunk_scores.shape[-1]), dtype=np.float32)
                delta = np.zeros(patch_ids.shape, dtype=np.float64)
                diff = np.zeros(patch_ids.shape, dtype=np.float64)
            valid = slots.valid.cpu().numpy()
            r_rows, r_cols = slots.row.cpu().numpy()[valid], slots.col.cpu().numpy()[valid]
            scores[r_rows, r_cols] = chunk_scores.detach().cpu().numpy()[valid]
            diff[r_rows, r_cols] = out_diff.detach().cpu().numpy()[valid]
            delta[r_rows, r_cols] = total.detach().cpu().numpy()[valid] - diff[r_rows, r_cols]
            if progress:
                progress(len(r_rows))
        return Attribution(
            targets=targets, patch_ids=patch_ids, scores=scores, delta=delta, output_diff=diff,
            n_steps=n_steps, method=self.method, precision=self.precision,
        )

    def _integrate(self, forward, x, slot_target, alphas, weights, steps_per_pass) -> torch.Tensor:
        """Sum over quadrature points of w_n * d target / d input at alpha_n * x, per slot: R×m×C(×H×W)."""
        n_slots, m = slot_target.shape
        valid = (slot_target >= 0).T.float()  # m×R
        index = slot_target.clamp(min=0).T  # m×R
        acc = torch.zeros((n_slots, *x.shape), device=x.device, dtype=torch.float32)
        for s0 in range(0, len(alphas), steps_per_pass):
            a, w = alphas[s0 : s0 + steps_per_pass], weights[s0 : s0 + steps_per_pass]
            s = len(a)
            scaled = (a.view(-1, *([1] * x.ndim)) * x.unsqueeze(0)).reshape(s * m, *x.shape[1:])
            scaled.requires_grad_(True)
            with self._autocast():
                y = neuron_activations(forward(scaled))
            y = y.float().view(s, m, -1)
            picked = y.gather(2, index.unsqueeze(0).expand(s, m, n_slots)) * valid  # s×m×R
            objective = (picked * w.view(s, 1, 1)).sum(dim=(0, 1))  # R
            for r in range(n_slots):
                (grad,) = torch.autograd.grad(objective[r], scaled, retain_graph=r < n_slots - 1)
                acc[r] += grad.view(s, m, *x.shape[1:]).sum(0)
        return acc


@dataclass(frozen=True)
class _Slots:
    target: torch.Tensor  # R×m upper-neuron index, -1 where the patch has fewer pairs
    row: torch.Tensor  # R×m target row in the result
    col: torch.Tensor  # R×m position within that target's patches
    valid: torch.Tensor  # R×m


def _slots(chunk, counts, starts, by_patch, rows, cols, targets, device) -> _Slots:
    n_slots = int(counts[chunk].max())
    shape = (n_slots, len(chunk))
    target = np.full(shape, -1, dtype=np.int64)
    row = np.zeros(shape, dtype=np.int64)
    col = np.zeros(shape, dtype=np.int64)
    for j, patch in enumerate(chunk):
        pairs = by_patch[starts[patch] : starts[patch + 1]]
        row[: len(pairs), j] = rows[pairs]
        col[: len(pairs), j] = cols[pairs]
        target[: len(pairs), j] = targets[rows[pairs]]
    t = torch.as_tensor(target, device=device)
    return _Slots(t, torch.as_tensor(row), torch.as_tensor(col), t.cpu() >= 0)
