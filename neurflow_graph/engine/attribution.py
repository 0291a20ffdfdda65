"""Step 3's importance scores: integrated gradients of many target neurons over their patches, batched.

Each (patch, step) forward pass is shared by every target whose concept contains the patch; the
gradients of the different targets are taken from that one graph. Zero baseline, as in the paper.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurflow_graph.engine.devices import (
    default_budget_mb,
    float32_matmuls,
    frozen,
    is_out_of_memory,
    needs_pinning,
    on_device,
    resolve_device,
)
from neurflow_graph.engine.layers import neuron_activations, skip_of
from neurflow_graph.engine.memory import call_peak, keep_freed_memory
from neurflow_graph.engine.params import METHODS, PRECISIONS
from neurflow_graph.errors import ConfigError

_GEOMETRIC_DECADES = 6
ADAPTIVE_LADDER = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


MAPS_SHARE = 0.25  # of the memory budget: lower maps computed ahead of the passes that read them
# Of the memory budget: the largest call of the model's prefix computing those maps; a bigger share only costs
# memory (docs/performance.md, Memory).
PREFIX_SHARE = 0.25
# On a CPU the process grows a few times the engine's live tensors while freed blocks are kept for reuse; the budget
# is divided by this there (docs/performance.md, Memory).
CPU_HEAP_FACTOR = 2.5
# A pass's fixed cost in rows, for sizing chunks: Python and kernel dispatch on a CPU. On a GPU a call counts as a
# full pass, its CPU overhead being expected to outweigh its GPU work (gpu_check.sh's `backward` stage measures it).
CPU_PASS_OVERHEAD_ROWS = 4
MAX_ROWS_PER_PASS = 8192  # (patch, step) rows of one forward pass, however much the budget would hold


@dataclass(frozen=True)
class Tuning:
    """How IG lays out its passes: speed and memory only, never the scores. The defaults are the engine's choices;
    the benchmarks compare the others side by side (docs/performance.md)."""

    batched_backward: bool = True
    """All target slots of a pass in batched vector-Jacobian products (``is_grads_batched``), in blocks of slots
    sized by the budget; False: one ``autograd.grad`` per slot."""
    call_overhead_rows: int | None = None
    """What one forward or backward call costs, in rows, when chunks are sized; None: the device's
    (``CPU_PASS_OVERHEAD_ROWS`` on a CPU, a full pass on a GPU)."""
    partition: bool = True
    """Chunks of patches sized against slot padding (``_partition``); False: equal chunks."""
    channels_last: bool = True
    """Convolution stacks' passes on NHWC maps."""
    cast_weights_once: bool = True
    """bf16/fp16: the bridge's convolution and linear weights cast once per transition (convolution stacks put in
    channels_last) instead of autocast casting the same frozen weights on every call. Autocast still runs and
    would round those weights the same way, so the results do not change."""


# An out-of-memory error halves the rows per pass and runs the transition again, at most this many times.
OOM_RETRIES = 4


def cpu_accelerates_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX, or AVX-512 BF16 as on AMD Zen 4 and later)."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if amx is not None and amx():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def default_precision(device: str | torch.device) -> str:
    """``auto``'s choice: bf16 autocast on CUDA, (strict) fp32 on a CPU.

    On a CPU bf16 is not the default even where the hardware runs it: on the real-weights benchmark at the
    paper's settings its top-tau sets equalled fp32's for 90 of 94 targets, short of the 99% that a default must
    keep (``--precision bf16`` stays available; docs/performance.md, "bf16 on a CPU").
    """
    return "bf16" if torch.device(device).type == "cuda" else "fp32"


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
        memory_budget_mb: working memory per pass when ``internal_batch_size`` is None; None: from the device
            (60% of the free GPU memory on CUDA, 1024 MB on a CPU).
        tuning: how passes are laid out (``Tuning``); never changes the scores.
    """

    def __init__(
        self,
        n_steps: int | str = 50,
        method: str = "gausslegendre",
        precision: str = "fp32",
        internal_batch_size: int | None = None,
        device: str | torch.device = "cpu",
        tolerance: float | None = None,
        memory_budget_mb: float | None = None,
        tuning: Tuning | None = None,
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
        if memory_budget_mb is not None and not memory_budget_mb > 0:
            raise ConfigError(f"memory_budget_mb must be positive, got {memory_budget_mb!r}")
        device = resolve_device(device)  # once, indexed: every later decision compares against it
        if precision in ("fp16", "tf32") and device.type != "cuda":
            raise ConfigError(f"precision {precision!r} needs a CUDA device; use 'bf16' or 'fp32' on CPU")
        self.n_steps, self.method, self.precision = n_steps, method, precision
        self.internal_batch_size, self.device, self.tolerance = internal_batch_size, device, tolerance
        self.memory_budget_mb = default_budget_mb(device) if memory_budget_mb is None else float(memory_budget_mb)
        self.tuning = tuning or Tuning()
        self._scale = 1.0  # halved by each out-of-memory retry, kept for later transitions
        self._slot_share = 0.5
        self._budget_rows = 1
        self._passes: nn.Module | None = None
        self._oom_reported = False

    def rows_per_pass(
        self, example: torch.Tensor, forward: nn.Module | None = None, slots: int = 1, n_steps: int = 1,
        budget_bytes: float | None = None,
    ) -> int:
        """(patch, step) rows per forward pass: the fixed batch size, or what fits ``budget_bytes`` (the budget).

        With ``forward``, a two-row probe measures what autograd keeps per row (saved tensors, counted
        once per storage) and the budget also covers backward's transient gradients and the ``slots``
        running sums (one per patch, i.e. per ``n_steps`` rows); without it, a pass is assumed to keep
        about 24 input-sized tensors per row.
        """
        if self.internal_batch_size is not None:
            self._budget_rows = max(1, int(self.internal_batch_size * self._scale))
            return self._budget_rows
        budget = self.memory_budget_mb * 2**20 * self._scale if budget_bytes is None else budget_bytes
        in_bytes = example[0].numel() * 4
        row_bytes = in_bytes * 24
        self._slot_share = 0.5  # of a row's bytes, what one more slot of a batched backward costs per row
        if forward is not None:
            saved, largest = self._saved_per_row(forward, example[:1])
            # x1.5: on the real-weights benchmark the process grew about a fifth beyond the bare estimate
            # (allocator slack, kernel workspaces), more while freed blocks are kept for reuse.
            row_bytes = 3 * (saved + 3 * largest + 2 * in_bytes) // 2 + -(-slots * in_bytes // n_steps)
            self._slot_share = min(1.0, 3 * (3 * largest + 2 * in_bytes) / 2 / row_bytes)
        # What the budget holds: a pass takes at most MAX_ROWS_PER_PASS of it, a batched backward's slots the rest.
        self._budget_rows = int(max(1, budget // row_bytes))
        return min(MAX_ROWS_PER_PASS, self._budget_rows)

    def _saved_per_row(self, forward: nn.Module, x1: torch.Tensor) -> tuple[int, int]:
        """Bytes autograd saves per row of a pass, and the largest single batch-sized saved tensor per row."""
        totals, largest = [], 0
        for rows in (1, 2):
            seen: dict[int, int] = {}

            def pack(t: torch.Tensor, seen=seen, rows=rows) -> torch.Tensor:
                nonlocal largest
                storage = t.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
                if rows == 2 and t.dim() > 0 and t.shape[0] == 2:
                    largest = max(largest, storage.nbytes() // 2)
                return t

            x = x1.expand(rows, *x1.shape[1:]).clone().requires_grad_(True)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), self._autocast():
                neuron_activations(forward(x)).sum()
            totals.append(sum(seen.values()))
        return max(totals[1] - totals[0], 1), max(largest, 1)

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
        forward = on_device(forward, self.device)  # a bridge shares the caller's modules: never moved
        with frozen(forward):  # nor left in another mode or with other grad flags
            return self._attribute_frozen(forward, inputs, targets, patch_ids, progress)

    def _attribute_frozen(self, forward, inputs, targets, patch_ids, progress) -> Attribution:
        # The passes' own copy (fp32 outputs f(x), f(0) come from ``forward`` as it is).
        self._passes = forward
        if self.precision in ("bf16", "fp16") and self.tuning.cast_weights_once:
            self._passes = cast_weights(forward, torch.bfloat16 if self.precision == "bf16" else torch.float16)
        for retry in range(OOM_RETRIES + 1):
            try:
                # Strict fp32 unless TF32 was asked for; the process's flags return afterwards.
                with keep_freed_memory(self.device), float32_matmuls(tf32=self.precision == "tf32"):
                    if self.n_steps != "auto":
                        return self._attribute(forward, inputs, targets, patch_ids, self.n_steps, progress)
                    return self._adaptive(forward, inputs, targets, patch_ids, progress)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if retry == OOM_RETRIES:
                    raise ConfigError(
                        f"out of memory on {self.device} even after halving the passes {OOM_RETRIES} times; pass a "
                        "smaller --memory-budget-mb or --internal-batch-size, or free the device's memory"
                    ) from None
                self._scale /= 2
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if not self._oom_reported:
                    warnings.warn(f"out of memory on {self.device}: rows per pass halved and the transition run "
                                  "again (reported once per run)", RuntimeWarning, stacklevel=2)
                    self._oom_reported = True
        raise AssertionError("unreachable")

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
        if self.precision in ("fp32", "tf32"):
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

        # The budget holds the result tables, a block of lower maps computed ahead of its passes and then
        # either the model's prefix computing maps (sized by its measured peak) or the passes, never both.
        n_pairs = patch_ids.size
        budget = self.memory_budget_mb * 2**20 * self._scale / (CPU_HEAP_FACTOR if self.device.type == "cpu" else 1.0)
        prefix, first = call_peak(lambda ids: self._to_device(inputs(ids)), uniq[order])  # and the first maps
        work = max(budget - n_pairs * (first.shape[1] * 4 + 16), budget / 4)
        maps_bytes = MAPS_SHARE * work
        per_call = prefix.items_within(min(work - maps_bytes, PREFIX_SHARE * work))
        in_bytes = first[0].numel() * 4
        passes = self._passes if self._passes is not None else forward
        rows_per_pass = self.rows_per_pass(first, passes, int(counts.max()), n_steps, work - maps_bytes)
        share = self._slot_share if self.tuning.batched_backward else None
        budget_rows = max(self._budget_rows, rows_per_pass)
        per_chunk = max(1, rows_per_pass // n_steps)
        bound = skip_of(forward) is not None  # inputs binds each call's skip paths: one call per chunk
        if bound:
            per_chunk = min(per_chunk, per_call)
        overhead = self.tuning.call_overhead_rows or (
            CPU_PASS_OVERHEAD_ROWS if self.device.type == "cpu" else rows_per_pass)
        chunks = (_partition(counts[order], per_chunk, n_steps, rows_per_pass, overhead, share, budget_rows)
                  if self.tuning.partition
                  else [(i, min(i + per_chunk, len(order))) for i in range(0, len(order), per_chunk)])
        with torch.no_grad():
            y0 = neuron_activations(forward(torch.zeros_like(first[:1]))).float()[0]
        # Results stay on the device until the transition ends: one transfer back, no per-chunk sync.
        delta = torch.zeros(n_pairs, dtype=torch.float64, device=self.device)
        diff = torch.zeros(n_pairs, dtype=torch.float64, device=self.device)
        scores = torch.zeros((n_pairs, first.shape[1]), device=self.device)
        sums = torch.empty(max(int(counts[order[a]]) * (b - a) for a, b in chunks) * first[0].numel(),
                           device=self.device)
        blocks = list(_blocks(chunks, 1 if bound else max(1, int(maps_bytes // in_bytes))))
        # Long-lived buffers before the prefix's transients, so that these free into one region the passes reuse.
        maps = torch.empty((max(bl[-1][1] - bl[0][0] for bl in blocks), *first.shape[1:]), device=self.device)
        for block in blocks:
            lo, hi = block[0][0], block[-1][1]
            ids = uniq[order[lo:hi]]
            done = 0 if bound or lo else 1  # the probe's maps, unless skip paths must be bound again
            maps[:done] = first[:done]
            for i in range(done, len(ids), per_call):
                part = ids[i : i + per_call]
                maps[i : i + len(part)] = self._to_device(inputs(part))
            for a, b in block:
                chunk, x = order[a:b], maps[a - lo : b - lo]
                slots = _slots(chunk, counts, starts, by_patch, rows, cols, targets, patch_ids.shape[1], self.device)
                acc = sums[: slots.target.numel() * first[0].numel()].view(*slots.target.shape, *first.shape[1:])
                steps_per_pass = max(1, min(n_steps, rows_per_pass // len(chunk)))
                rows_here = steps_per_pass * len(chunk)
                slot_block = _slot_block(budget_rows, rows_here, share)
                self._integrate(passes, x, slots.target, alphas, weights, steps_per_pass, acc.zero_(), slot_block)
                with torch.no_grad():
                    attr = acc.mul_(x.unsqueeze(0))  # R×m×C(×H×W)
                    chunk_scores = attr if attr.ndim == 3 else attr.flatten(3).mean(-1)  # over positions or tokens
                    total = attr.flatten(2).sum(-1)
                    y1 = neuron_activations(forward(x)).float()
                    t_idx = slots.target.clamp(min=0)
                    out_diff = (y1.gather(1, t_idx.T).T - y0[t_idx])[slots.slot, slots.patch].double()  # valid pairs
                    scores[slots.flat] = chunk_scores[slots.slot, slots.patch].float()
                    diff[slots.flat] = out_diff
                    delta[slots.flat] = total[slots.slot, slots.patch].double() - out_diff
                if progress:
                    progress(slots.n_valid)
        shape = patch_ids.shape
        return Attribution(
            targets=targets, patch_ids=patch_ids, scores=scores.cpu().numpy().reshape(*shape, -1),
            delta=delta.cpu().numpy().reshape(shape), output_diff=diff.cpu().numpy().reshape(shape),
            n_steps=n_steps, method=self.method, precision=self.precision,
        )

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 on the device; a host batch bound for a GPU goes through pinned memory, without blocking.

        Only a CPU tensor is pinned (``needs_pinning``): maps already on the GPU are converted in place there.
        """
        if needs_pinning(x.device, self.device):
            return x.float().pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device, torch.float32)

    def _integrate(self, forward, x, slot_target, alphas, weights, steps_per_pass, acc, slot_block: int = 1
                   ) -> None:
        """Add to ``acc`` (R×m×C(×H×W)) the sum over quadrature points of w_n * d target / d input at alpha_n * x.

        With ``slot_block`` > 1, blocks of that many slots share one batched vector-Jacobian product.
        """
        n_slots, m = slot_target.shape
        valid = (slot_target >= 0).T.float()  # m×R
        index = slot_target.clamp(min=0).T  # m×R
        for s0 in range(0, len(alphas), steps_per_pass):
            a, w = alphas[s0 : s0 + steps_per_pass], weights[s0 : s0 + steps_per_pass]
            s = len(a)
            scaled = (a.view(-1, *([1] * x.ndim)) * x.unsqueeze(0)).reshape(s * m, *x.shape[1:])
            if self.tuning.channels_last and scaled.ndim == 4:  # convolutions run faster on NHWC (docs/performance.md)
                scaled = scaled.contiguous(memory_format=torch.channels_last)
            scaled.requires_grad_(True)
            with self._autocast():
                y = neuron_activations(forward(scaled))
            y = y.float().view(s, m, -1)
            picked = y.gather(2, index.unsqueeze(0).expand(s, m, n_slots)) * valid  # s×m×R
            objective = (picked * w.view(s, 1, 1)).sum(dim=(0, 1))  # R
            if slot_block > 1 and n_slots > 1:
                eye = torch.eye(n_slots, device=objective.device, dtype=objective.dtype)
                for r0 in range(0, n_slots, slot_block):
                    r1 = min(r0 + slot_block, n_slots)
                    (grads,) = torch.autograd.grad(objective, scaled, grad_outputs=eye[r0:r1],
                                                   retain_graph=r1 < n_slots, is_grads_batched=True)
                    acc[r0:r1] += grads.view(r1 - r0, s, m, *x.shape[1:]).sum(1) if s > 1 else grads
                continue
            for r in range(n_slots):
                (grad,) = torch.autograd.grad(objective[r], scaled, retain_graph=r < n_slots - 1)
                acc[r] += grad.view(s, m, *x.shape[1:]).sum(0) if s > 1 else grad


def cast_weights(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``module`` whose convolution and linear layers hold ``dtype`` weights (what autocast would cast
    them to on every call), in channels_last where it has 2-d convolutions; other modules stay as they are."""
    import copy

    cast = copy.deepcopy(module)
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    for layer in cast.modules():
        if isinstance(layer, kinds):
            layer.to(dtype)
            if isinstance(layer, nn.Conv2d):
                layer.to(memory_format=torch.channels_last)
    return cast


@dataclass(frozen=True)
class _Slots:
    target: torch.Tensor  # R×m upper-neuron index, -1 where the patch has fewer pairs (on the device)
    slot: torch.Tensor  # V, slot of each valid pair
    patch: torch.Tensor  # V, patch position in the chunk of each valid pair
    flat: torch.Tensor  # V, row * k + col of each valid pair in the result
    n_valid: int


def _slots(chunk, counts, starts, by_patch, rows, cols, targets, k, device) -> _Slots:
    n_slots = int(counts[chunk].max())
    target = np.full((n_slots, len(chunk)), -1, dtype=np.int64)
    slot, patch, flat = [], [], []
    for j, p in enumerate(chunk):
        pairs = by_patch[starts[p] : starts[p + 1]]
        target[: len(pairs), j] = targets[rows[pairs]]
        slot.append(np.arange(len(pairs)))
        patch.append(np.full(len(pairs), j))
        flat.append(rows[pairs] * k + cols[pairs])
    host = [torch.from_numpy(target), *(torch.from_numpy(np.concatenate(a)) for a in (slot, patch, flat))]
    if device.type == "cuda":
        host = [t.pin_memory() for t in host]
    t, sl, pa, fl = (h.to(device, non_blocking=True) for h in host)
    return _Slots(t, sl, pa, fl, int(len(host[1])))


def _slot_block(budget_rows: int, rows: int, share: float | None) -> int:
    """Slots per batched backward call in a pass of ``rows`` rows: what the budget (``budget_rows`` rows' worth)
    leaves free beside the pass, each slot taking ``share`` of a row's bytes per row (its own gradients of the
    pass's tensors); 1: the per-slot loop."""
    if share is None:
        return 1
    return max(1, int((budget_rows - rows) / (rows * share)))


def _partition(counts: np.ndarray, per_chunk: int, n_steps: int, rows_per_pass: int, overhead: int,
               share: float | None = None, budget_rows: int | None = None) -> list[tuple[int, int]]:
    """Consecutive chunks of patches (sorted by decreasing pair count) that minimise the rows a transition runs.

    A chunk's patches share one forward graph and each of its slots (its largest pair count) costs one
    backward pass over all of them, so a patch with fewer pairs pads; small chunks pad less but each call
    (the forward, and each backward) also costs ``overhead`` rows. With a batched backward (``share``, see
    ``_slot_block``; ``budget_rows``: what the budget holds, default ``rows_per_pass``) a backward call takes a
    block of slots, larger in smaller passes. Exact dynamic programme over chunk ends, chunks of at most
    ``per_chunk``.
    """
    n = len(counts)
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    sizes = np.arange(1, per_chunk + 1)
    steps = np.maximum(1, np.minimum(n_steps, rows_per_pass // sizes))
    passes = -(-n_steps // steps)
    blocks = np.array([_slot_block(budget_rows or rows_per_pass, int(r), share) for r in steps * sizes])
    for j in range(1, n + 1):
        lo = max(0, j - per_chunk)
        i = np.arange(lo, j)
        size = j - i - 1
        calls = 1 + -(-counts[i] // blocks[size])  # the forward and the backward calls of each pass
        cost = best[lo:j] + (1 + counts[i]) * sizes[size] * n_steps + overhead * passes[size] * calls
        pick = int(np.argmin(cost))
        best[j], start[j] = cost[pick], lo + pick
    chunks, j = [], n
    while j > 0:
        chunks.append((int(start[j]), j))
        j = int(start[j])
    return chunks[::-1]


def _blocks(chunks: list[tuple[int, int]], max_patches: int) -> Iterator[list[tuple[int, int]]]:
    """Runs of consecutive chunks holding at most ``max_patches`` patches (or one chunk): maps computed together."""
    block: list[tuple[int, int]] = []
    for a, b in chunks:
        if block and b - block[0][0] > max_patches:
            yield block
            block = []
        block.append((a, b))
    if block:
        yield block

