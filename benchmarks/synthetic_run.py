"""The run record of a benchmark's synthetic run (store_write.py, queries.py): every field `RunMeta` reads, so
the store writes it as it writes a real bundle's. Its run id is the benchmark's own, not a hash of the content."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.params import NeurFlowParams


def synthetic_meta(run_id: str, model: str, class_index: int, class_name: str, layers: Sequence[str],
                   created_at: str, provenance: dict, **params) -> RunMeta:
    """A checked run record for a run no engine computed: no images, one target and no time per layer."""
    chosen = asdict(NeurFlowParams(**params))
    run = {
        "run_id": run_id, "created_at": created_at, "complete": True,
        "model": {"name": model, "num_classes": 1000, **provenance}, "weights_sha256": "0" * 64,
        "class": {"index": class_index, "name": class_name}, "layers": list(layers),
        "params": {**chosen, "granularities": list(chosen["granularities"]), "input_size": 224},
        "images": {"kept": 0, "sha256": []},
        "layer_stats": {upper: {"lower": lower, "targets": 1, "n_steps": chosen["n_steps"], "completeness_error": 0.0,
                                "seconds": 0.0} for upper, lower in zip(layers[:-1], layers[1:], strict=True)},
        "stage_seconds": {}, "versions": {},
    }
    return RunMeta.parse(run, f"synthetic run {run_id}")
