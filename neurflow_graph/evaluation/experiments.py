"""Run one experiment over several runs (classes): raw rows, per-run records, the aggregate, files and figure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from neurflow_graph.engine.memory import keep_freed_memory

from . import plots, report
from .fidelity import evaluate_fidelity, headline_fidelity, summarize_fidelity
from .optimality import evaluate_optimality, headline_optimality, summarize_optimality
from .record import evaluation_record, write_results
from .subject import Subject
from .weights import evaluate_weights, headline_weights, summarize_weights

KINDS = ("optimality", "fidelity", "weights")


@dataclass(frozen=True)
class EvaluationOutput:
    """What one command produced: all raw rows, one record per run, the aggregate over runs, written files."""

    kind: str
    table: pa.Table
    records: list[dict]
    aggregate: dict
    files: dict[str, Path]
    text: str


@dataclass(frozen=True)
class _Kind:
    evaluate: Callable[..., pa.Table]
    summarize: Callable[[pa.Table], list[dict]]
    headline: Callable[[pa.Table], dict]
    plot: Callable[..., Path]
    text: Callable[[list[dict]], str]


_KINDS = {
    "optimality": _Kind(
        lambda s, p, rng, progress: evaluate_optimality(s, p["taus"], p["targets"], p["samples"], rng, progress),
        summarize_optimality, headline_optimality, plots.plot_optimality, report.optimality_table),
    "fidelity": _Kind(
        lambda s, p, rng, progress: evaluate_fidelity(s, p["taus"], p["samples"], rng, progress),
        summarize_fidelity, headline_fidelity, plots.plot_fidelity, report.fidelity_table),
    "weights": _Kind(
        lambda s, p, rng, progress: evaluate_weights(s, p["taus"][0], p["targets"], p["samples"], p["max_size"],
                                                     rng, progress),
        summarize_weights, headline_weights, plots.plot_weights, report.weights_table),
}


def default_taus(kind: str, subject: Subject) -> list[int]:
    """The run's tau; for fidelity the paper's 4, 8, 16 as far as the run's circuit can be pruned to them."""
    if kind == "fidelity":
        return [t for t in (4, 8, 16) if t <= subject.tau] or [subject.tau]
    return [subject.tau]


DEFAULTS = {
    "optimality": {"taus": None, "targets": 5, "samples": 100},
    "fidelity": {"taus": None, "samples": 20},
    "weights": {"taus": None, "targets": 5, "samples": 20, "max_size": 50},
}


def run_experiment(kind: str, subjects: Iterable[Subject], out_dir: str | os.PathLike, params: dict | None = None,
                   seed: int = 0, progress: bool = False, title: str = "") -> EvaluationOutput:
    """Run experiment ``kind`` on every subject, then write ``{kind}.parquet``, ``{kind}.json`` and ``{kind}.png``.

    ``params`` overrides ``DEFAULTS[kind]`` (``taus``: None means ``default_taus``).
    One random generator, seeded once, serves every subject in order.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    spec = _KINDS[kind]
    params = {**DEFAULTS[kind], **(params or {})}
    rng = np.random.default_rng(seed)
    tables, records = [], []
    for subject in subjects:
        used = {**params, "taus": [int(t) for t in params["taus"] or default_taus(kind, subject)], "seed": seed}
        with keep_freed_memory(subject.device):  # thousands of forward passes allocate the same tensors again
            table = spec.evaluate(subject, used, rng, progress)
        tables.append(table)
        used.update(k=subject.k, run_tau=subject.tau, n_images=int(len(subject.images)),
                    n_patches=len(subject.patches))
        records.append(evaluation_record(kind, subject.meta, used, spec.headline(table), spec.summarize(table)))
    if not tables:
        raise ValueError("no runs to evaluate")
    table = pa.concat_tables(tables)
    layers = spec.summarize(table)
    aggregate = {"params": {**params, "taus": sorted({t for r in records for t in r["params"]["taus"]}), "seed": seed},
                 "run_ids": [r["run_id"] for r in records], "summary": spec.headline(table), "layers": layers}
    files = write_results(out_dir, kind, table, records, aggregate)
    files["png"] = spec.plot(layers, Path(out_dir) / f"{kind}.png", title)
    return EvaluationOutput(kind, table, records, aggregate, files, spec.text(layers))
