"""Evaluation records: what one experiment found for one run, written to disk and storable as an Evaluation node."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from neurflow_graph.engine.meta import RunMeta

from ..errors import StoreError

_KEY = re.compile(r"[^A-Za-z0-9_]+")


def evaluation_record(kind: str, meta: RunMeta, params: dict, summary: dict, layers: list[dict]) -> dict:
    """The record of one evaluation of one run: kind, run_id, params, summary scalars and per-layer rows.

    The id is ``{kind}-{run_id}-{hash}``, the hash covering the parameters: re-running the same
    evaluation gives the same id, so storing it again replaces the node instead of adding one.
    """
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return {
        "id": f"{kind}-{meta.run_id}-{digest}", "kind": kind, "run_id": meta.run_id, "model": meta.model.name,
        "class_index": meta.class_index, "class_name": meta.class_name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": _clean(params), "summary": _clean(summary), "layers": _clean(layers),
    }


def evaluation_properties(record: dict) -> dict[str, Any]:
    """The record as node properties: scalars flattened (``params_tau``, ``summary_mean_diff``), the rest as JSON."""
    props: dict[str, Any] = {}
    for key in ("kind", "run_id", "model", "class_index", "class_name", "created_at"):
        if record.get(key) is not None:
            props[key] = record[key]
    for section in ("params", "summary"):
        for key, value in record[section].items():
            name = f"{section}_{_KEY.sub('_', str(key))}"
            if isinstance(value, (str, int, float, bool)):
                props[name] = value
            elif isinstance(value, (list, tuple)) and value and len({type(v) for v in value}) == 1 \
                    and isinstance(value[0], (str, int, float, bool)):
                props[name] = list(value)
        props[f"{section}_json"] = json.dumps(record[section], sort_keys=True)
    props["layers_json"] = json.dumps(record["layers"], sort_keys=True)
    return props


def store_evaluation(run: Callable[..., list[dict]], record: dict) -> dict:
    """Store ``record`` as an Evaluation node linked to its Run, through a query runner ``run(name, **params)``.

    ``run`` is e.g. ``Connection.run`` or ``functools.partial(store.run_cypher, driver, database)``. Raises
    StoreError when the Run is not in the store (load its bundle first).
    """
    rows = run("write_evaluation", id=record["id"], run_id=record["run_id"], props=evaluation_properties(record))
    if not rows:
        raise StoreError(f"run {record['run_id']!r} is not in the store; load its bundle before its evaluation")
    return rows[0]


def write_results(out_dir: str | os.PathLike, kind: str, table: pa.Table, records: list[dict],
                  aggregate: dict) -> dict[str, Path]:
    """Write ``{kind}.parquet`` (the raw rows) and ``{kind}.json`` (records per run plus the aggregate)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": out / f"{kind}.parquet", "json": out / f"{kind}.json"}
    pq.write_table(table, paths["parquet"])
    payload = {"kind": kind, "aggregate": _clean(aggregate), "records": records}
    paths["json"].write_text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return paths


def _clean(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
