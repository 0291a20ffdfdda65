"""Optimality of core neurons (paper Figure 4): the knockout loss of a core set against random sets of its size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from ..errors import ConfigError
from .importance import ig_steps, importance
from .knockout import loss, overlap
from .prune import prune
from .stats import groups, mean_ci, random_sets
from .subject import Subject
from .table import columns, extend, run_columns

KIND = "optimality"


def evaluate_optimality(subject: Subject, taus: Sequence[int], n_targets: int = 5, n_random: int = 100,
                        rng: np.random.Generator | int | None = 0, progress: bool = False) -> pa.Table:
    """One row per (target, random set): L(S, a) of the target's core set and of one random set of the same size.

    L(S, a) = |V_a^knockout(S) ∩ V_a| / |V_a|: the share of a's top-k patches still in its top-k over the
    whole probe set once the lower-layer neurons S are zeroed (lower is a better core set). For each tau and
    circuit layer, ``n_targets`` targets of the circuit pruned to tau are drawn, and ``n_random`` random sets
    (drawn once per layer, shared by its targets) are compared with each target's core set. Layers whose
    lower layer has at most tau neurons are skipped. ``diff`` = random loss - core loss.
    """
    rng = np.random.default_rng(rng)
    rows: dict[str, list] = {key: [] for key in _COLUMNS}
    widths = subject.widths()
    for tau in taus:
        circuit = prune(subject.circuit, tau) if tau <= subject.tau else subject.circuit
        for index, tr in enumerate(circuit.transitions):
            width = widths[tr.lower]
            if tau >= width:
                continue
            pick = np.sort(rng.choice(len(tr.targets), size=min(n_targets, len(tr.targets)), replace=False))
            targets, knock = tr.targets[pick], subject.knockout(index)
            concept = knock.concept(targets, subject.k)
            if tau <= subject.tau:
                core = tr.core[pick, :tau]
            else:
                scores = importance(knock, targets, tr.top_patches[pick], ig_steps(subject.meta, tr))
                core = np.argsort(-scores, axis=1, kind="stable")[:, :tau]
            keep_core = np.ones((len(targets), 1, width), dtype=bool)
            np.put_along_axis(keep_core[:, 0], core, False, axis=1)
            sets = random_sets(rng, width, tau, n_random)
            keep_random = np.ones((len(sets), width), dtype=bool)
            np.put_along_axis(keep_random, sets, False, axis=1)
            with tqdm(total=len(targets) * (len(sets) + 1), desc=f"optimality {tr.layer}<-{tr.lower} tau={tau}",
                      unit="set", disable=not progress, leave=False) as bar:
                core_loss = loss(knock, targets, concept, keep_core, bar.update)[:, 0]
                random_loss = loss(knock, targets, concept, keep_random, bar.update)
            agreement = overlap(concept[:, None, :], tr.top_patches[pick], knock.n_patches)[:, 0]
            for t, target in enumerate(targets):
                extend(rows, _COLUMNS, len(sets), {
                    **run_columns(subject), "tau": tau, "layer": tr.layer, "lower": tr.lower, "layer_index": index,
                    "target": int(target), "core_loss": float(core_loss[t]), "random_set": np.arange(len(sets)),
                    "random_loss": random_loss[t], "diff": random_loss[t] - core_loss[t],
                    "concept_agreement": float(agreement[t])})
    if not rows["run_id"]:
        raise ConfigError(f"no layer of run {subject.run_id} has more than tau={max(taus)} neurons below it; "
                          f"lower tau (layer widths: {widths})")
    return pa.table(rows)


def summarize_optimality(cases: pa.Table) -> list[dict]:
    """Per (tau, layer): mean losses, mean difference (random - core) with 99% CIs, share of random sets beating
    core and by how much they beat it on average (``gap_when_random_better``).

    ``ci99`` treats every (target, random set) case as one sample, as the paper does; ``ci99_targets``
    uses one mean difference per target and is the more conservative of the two.
    """
    c = columns(cases)
    out = []
    for (tau, index), rows in groups(c, ["tau", "layer_index"]).items():
        diff = c["diff"][rows]
        mean, low, high = mean_ci(diff)
        subset = {key: value[rows] for key, value in c.items()}
        per_target = [diff[r].mean() for r in groups(subset, ["run_id", "target"]).values()]
        _, t_low, t_high = mean_ci(np.asarray(per_target))
        out.append({
            "tau": int(tau), "layer_index": int(index), "layer": str(c["layer"][rows[0]]),
            "lower": str(c["lower"][rows[0]]), "n_runs": len(set(c["run_id"][rows].tolist())),
            "n_targets": len(per_target), "n_cases": len(rows),
            "core_loss": float(c["core_loss"][rows].mean()), "random_loss": float(c["random_loss"][rows].mean()),
            "mean_diff": mean, "ci99_low": low, "ci99_high": high, "ci99_targets_low": t_low,
            "ci99_targets_high": t_high, "share_random_better": float((diff < 0).mean()),
            "share_ties": float((diff == 0).mean()),
            "gap_when_random_better": float(-diff[diff < 0].mean()) if (diff < 0).any() else 0.0,
            "concept_agreement": float(c["concept_agreement"][rows].mean()),
        })
    return out


def headline_optimality(cases: pa.Table) -> dict:
    """A few scalars over every case: mean difference and share of random sets beating the core set."""
    diff = np.asarray(cases.column("diff").to_pylist(), dtype=float)
    mean, low, high = mean_ci(diff)
    return {"n_cases": len(diff), "mean_diff": mean, "ci99_low": low, "ci99_high": high,
            "share_random_better": float((diff < 0).mean()) if len(diff) else float("nan"),
            "gap_when_random_better": float(-diff[diff < 0].mean()) if (diff < 0).any() else 0.0}


_COLUMNS = ("run_id", "model", "class_index", "tau", "layer", "lower", "layer_index", "target", "core_loss",
            "random_set", "random_loss", "diff", "concept_agreement")
