"""Fidelity of the importance scores (paper Figure 6): summed |IG| of random neuron sets vs their knockout's effect.

Sign convention: the correlation is between a set's summed importance and the concept change its
knockout causes, 1 - L(S, a) (the share of the target's top-k patches that leave its top-k).
Positive = larger importance, larger concept change: what a faithful score should give. (The
correlation with the overlap L itself has the opposite sign; the authors' script reported that one
un-negated.)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from .importance import ig_steps, importance
from .knockout import loss
from .prune import prune
from .stats import groups, pearson_rows, random_sets, spearman_rows
from .subject import Subject
from .table import columns, extend, run_columns

KIND = "weights"
SIGN_CONVENTION = "positive = larger importance, larger concept change (correlation of summed |IG| with 1 - overlap)"


def evaluate_weights(subject: Subject, tau: int | None = None, n_targets: int = 5, samples: int = 20,
                     max_size: int = 50, rng: np.random.Generator | int | None = 0,
                     progress: bool = False) -> pa.Table:
    """One row per (target, random set): the set's summed mean-|IG| importance and the concept change it causes.

    Targets are drawn from the circuit pruned to ``tau`` (default: the run's tau), ``n_targets`` per
    layer. Set sizes run 1..min(``max_size``, width - 1) (at the full width every set is the same set);
    each size has ``samples`` random sets (every set once when there are fewer), shared by the layer's
    targets. ``change`` = 1 - L(S, a).
    """
    rng = np.random.default_rng(rng)
    circuit = prune(subject.circuit, tau or subject.tau)
    widths = subject.widths()
    rows: dict[str, list] = {key: [] for key in _COLUMNS}
    for index, tr in enumerate(circuit.transitions):
        width = widths[tr.lower]
        sizes = np.arange(1, min(max_size, width - 1) + 1)
        if not len(sizes):
            continue
        pick = np.sort(rng.choice(len(tr.targets), size=min(n_targets, len(tr.targets)), replace=False))
        targets, knock = tr.targets[pick], subject.knockout(index)
        sets = [random_sets(rng, width, int(size), samples) for size in sizes]
        size_of = np.concatenate([np.full(len(s), size) for s, size in zip(sets, sizes, strict=True)])
        keep = np.ones((len(size_of), width), dtype=bool)
        start = 0
        for block in sets:
            np.put_along_axis(keep[start : start + len(block)], block, False, axis=1)
            start += len(block)
        desc = f"weights {tr.layer}<-{tr.lower}"
        with tqdm(total=len(targets) * (len(keep) + subject.k), desc=desc, unit="set", disable=not progress,
                  leave=False) as bar:
            scores = importance(knock, targets, tr.top_patches[pick], ig_steps(subject.meta, tr),
                                progress=bar.update)
            concept = knock.concept(targets, subject.k)
            change = 1.0 - loss(knock, targets, concept, keep, bar.update)  # T×M
        summed = (scores[:, None, :] * ~keep[None]).sum(axis=2)  # T×M
        for t, target in enumerate(targets):
            extend(rows, _COLUMNS, len(keep), {
                **run_columns(subject), "layer": tr.layer, "lower": tr.lower, "layer_index": index,
                "target": int(target), "size": size_of, "random_set": np.arange(len(keep)), "score": summed[t],
                "change": change[t]})
    return pa.table(rows)


def weight_correlations(table: pa.Table) -> pa.Table:
    """One row per (run, layer, target, size): Pearson and Spearman correlation of score and change."""
    c = columns(table)
    out = []
    for (run_id, index, target, size), rows in groups(c, ["run_id", "layer_index", "target", "size"]).items():
        score, change = c["score"][rows], c["change"][rows]
        out.append({"run_id": str(run_id), "layer_index": int(index), "layer": str(c["layer"][rows[0]]),
                    "lower": str(c["lower"][rows[0]]), "target": int(target), "size": int(size),
                    "n_sets": len(rows), "pearson": float(pearson_rows(score, change)),
                    "spearman": float(spearman_rows(score, change)), "mean_change": float(change.mean())})
    return pa.Table.from_pylist(out)


def summarize_weights(table: pa.Table) -> list[dict]:
    """Per (layer, size): correlations averaged over runs and targets (NaN where a knockout never changed V_a)."""
    corr = weight_correlations(table)
    c = columns(corr)
    out = []
    for (index, size), rows in groups(c, ["layer_index", "size"]).items():
        pearson, spearman = c["pearson"][rows].astype(float), c["spearman"][rows].astype(float)
        out.append({"layer_index": int(index), "layer": str(c["layer"][rows[0]]), "lower": str(c["lower"][rows[0]]),
                    "size": int(size), "n_targets": len(rows), "n_defined": int(np.isfinite(pearson).sum()),
                    "pearson": _nanmean(pearson), "spearman": _nanmean(spearman),
                    "mean_change": float(c["mean_change"][rows].mean())})
    return out


def headline_weights(table: pa.Table) -> dict:
    """Per layer: mean Pearson correlation at set size 1 and over all sizes, with the sign convention."""
    summary = summarize_weights(table)
    out: dict = {"sign_convention": SIGN_CONVENTION}
    for layer in dict.fromkeys(r["layer"] for r in summary):
        mine = [r for r in summary if r["layer"] == layer]
        out[f"pearson_size1_{layer}"] = next((r["pearson"] for r in mine if r["size"] == 1), float("nan"))
        out[f"pearson_mean_{layer}"] = _nanmean(np.array([r["pearson"] for r in mine]))
    all_rows = np.array([r["pearson"] for r in summary])
    out["pearson_size1"] = _nanmean(np.array([r["pearson"] for r in summary if r["size"] == 1]))
    out["pearson_mean"] = _nanmean(all_rows)
    return out


_COLUMNS = ("run_id", "model", "class_index", "layer", "lower", "layer_index", "target", "size", "random_set",
            "score", "change")


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
