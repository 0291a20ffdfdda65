"""One definition of a class's latest complete run: the writer flags it, and every command reads the flag."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from neurflow_graph.bundle.tables import BundleTables
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.query import fetch_class_circuit, fetch_classes, run_query
from neurflow_graph.query.labels import fetch_label_run
from neurflow_graph.store import read_bundle_tables, write_run_graph
from neurflow_graph.store.connection import Connection
from neurflow_graph.store.writer import latest_run


def _twin(tables: BundleTables, suffix: str, created_at: str) -> BundleTables:
    """The same circuit as another run of the class: a new run id, the given created_at."""
    run = {**tables.meta.record, "run_id": f"{tables.run_id}-{suffix}", "created_at": created_at}
    return dataclasses.replace(tables, meta=RunMeta.parse(run))


def _picks(conn: Connection, class_id: str) -> tuple[str, str, str]:
    """The run `show` (fetch_class_circuit), `label` (fetch_label_run) and `list_classes` pick for the class."""
    (info,) = [c for c in fetch_classes(conn) if c.class_id == class_id]
    return fetch_class_circuit(conn, class_id).run_id, fetch_label_run(conn, class_id).run_id, str(info.latest_run)


def test_label_and_show_pick_the_same_run_when_created_at_ties(conn: Connection, bundle_dir: Path) -> None:
    tables = read_bundle_tables(bundle_dir)
    class_id = f"{tables.model_name}/{tables.meta.class_index}"
    stamp = "2026-01-01T00:00:00Z"  # one-second resolution: two runs made in the same second
    first, second = _twin(tables, "b", stamp), _twin(tables, "a", stamp)  # the later one has the smaller id
    for twin in (first, second):
        write_run_graph(conn.driver, conn.database, twin)
    assert _picks(conn, class_id) == (second.run_id,) * 3  # same created_at: the later completed ingest wins
    flagged = [r for r in conn.run("class_runs", class_id=class_id) if r["complete"]]
    assert latest_run(flagged) == second.run_id
    assert [r["run_id"] for r in run_query(conn, "label_runs_of_class", class_ref=class_id)][0] == second.run_id

    write_run_graph(conn.driver, conn.database, first)  # re-ingested: now it completed last
    assert _picks(conn, class_id) == (first.run_id,) * 3

    def crash(query: str, index: int) -> None:
        raise RuntimeError("killed mid-ingest")

    with pytest.raises(RuntimeError, match="killed"):  # the latest run turns incomplete: the other one is latest
        write_run_graph(conn.driver, conn.database, first, on_batch=crash)
    assert _picks(conn, class_id) == (second.run_id,) * 3
    newer = _twin(tables, "c", "2026-01-01T00:00:01Z")  # made a second later: latest whatever the ingest order
    write_run_graph(conn.driver, conn.database, newer)
    write_run_graph(conn.driver, conn.database, first)
    assert _picks(conn, class_id) == (newer.run_id,) * 3


def test_latest_run_orders_created_then_completed_then_id() -> None:
    runs = [{"run_id": "r1", "created_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-02T00:00:00.5+00:00"},
            {"run_id": "r2", "created_at": "2026-01-01T00:00:00+00:00", "completed_at": "2026-01-02T00:00:00.1+00:00"},
            {"run_id": "r0", "created_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-02T00:00:00.5+00:00"}]
    assert latest_run(runs) == "r1"  # r1 and r0 tie on both times: the greater id
    assert latest_run(runs[1:2]) == "r2" and latest_run([]) is None
    assert latest_run([*runs, {"run_id": "old", "created_at": None, "completed_at": None}]) == "r1"
    assert latest_run([*runs, {"run_id": "new", "created_at": "2026-01-01T00:00:01", "completed_at": None}]) == "new"
