"""Write a run bundle into the graph store: batched `UNWIND $rows` queries from cypher/, one writer, crash-safe.

An ingest opens by marking the Run incomplete and deleting whatever an earlier (perhaps interrupted)
ingest of the same run left; it then CREATEs the run's nodes and relationships batch by batch (shared
Model/Layer/Class/Neuron nodes are MERGEd) and sets `complete = true` only in its very last
transaction. Re-running an interrupted ingest therefore converges to the graph of a clean one, and
ingesting the same bundle twice leaves identical counts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import neo4j
import pyarrow as pa

from neurflow_graph.errors import ConfigError, StoreError
from neurflow_graph.store import rows as R
from neurflow_graph.store.bundle import BundleTables, check_tables, read_bundle_tables
from neurflow_graph.store.connection import connect
from neurflow_graph.store.filelock import exclusive
from neurflow_graph.store.queries import load, run
from neurflow_graph.store.schema import ensure_schema

DEFAULT_BATCH_SIZE = 10_000
"""Graph elements per write transaction. Measured (benchmarks/store_write.py, 415k elements, warm server,
medians of 3 in one run): 10k 49.3k/s, 5k 46.9k/s, 3k 38.5k/s; 20k was ~10% slower than 10k."""
DELETE_BATCH_SIZE = 2_000
"""Nodes per delete transaction when a run is cleared (each carries its relationships)."""

BatchHook = Callable[[str, int], None]
"""`on_batch(query_name, batch_index)`: called after each committed write batch (progress, tests)."""

_WRITE_LOCK = threading.Lock()  # one writer per process (ArcadeDB fails on concurrent MERGEs of one key)


@dataclass(frozen=True)
class WriteReport:
    """What an ingest wrote: graph elements (MERGEd ones included), transactions, time taken."""

    run_id: str
    nodes: int
    relationships: int
    batches: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def elements_per_second(self) -> float:
        return (self.nodes + self.relationships) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Step:
    query: str
    rows: Callable[[BundleTables], pa.Table]
    nodes_per_item: int
    rels_per_item: int
    missing: str  # what a short write means, for the error message
    params: dict[str, Any] = field(default_factory=dict)


def write_bundle(
    driver: neo4j.Driver,
    database: str,
    bundle: str | os.PathLike[str] | BundleTables,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchHook | None = None,
) -> WriteReport:
    """Write one run bundle (a directory or its tables) into `database`; returns a WriteReport.

    `on_batch(query_name, batch_index)` runs after each committed batch; an exception it raises stops
    the ingest there, leaving the run incomplete (as a crash would) until the bundle is written again.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    tables = bundle if isinstance(bundle, BundleTables) else read_bundle_tables(bundle)
    check_tables(tables)
    run_id = tables.run_id
    with _WRITE_LOCK:
        started = time.perf_counter()
        ensure_schema(driver, database)
        run(
            driver,
            database,
            "write_run_start",
            run_id=run_id,
            run_props=R.run_properties(tables.run, str(tables.path) if tables.path else None, _now()),
            model_props=R.model_row(tables.run),
            class_props=R.class_row(tables.run),
        )
        _clear_run(driver, database, run_id)
        nodes, rels, n_batches = 3, 3, 0  # Run, Model, Class; FOR_CLASS and two OF_MODEL
        for step, index, lists, expected in _batches(tables, batch_size):
            written = run(driver, database, step.query, rows=lists, **step.params)[0]["written"]
            if written != expected:
                raise StoreError(
                    f"query {step.query!r} wrote {written} of {expected} elements: {step.missing}; "
                    f"run {run_id} stays incomplete"
                )
            nodes += expected * step.nodes_per_item
            rels += expected * step.rels_per_item
            n_batches += 1
            if on_batch is not None:
                on_batch(step.query, index)
        rels += _write_logit_of(driver, database, tables)
        counts = _counts(tables)
        done = run(driver, database, "write_run_complete", run_id=run_id, counts=counts, completed_at=_now())
        if not done or done[0]["complete"] is not True:
            raise StoreError(f"run {run_id} vanished from the store during its ingest; write it again")
        return WriteReport(run_id, nodes, rels, n_batches, time.perf_counter() - started, counts)


def load_bundle(
    bundle_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    database: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchHook | None = None,
) -> WriteReport:
    """Load a bundle directory into the configured store (Neo4j via NEO4J_URI, else the embedded server).

    What the CLI `load BUNDLE` calls: nothing is recomputed. With the embedded server a file lock in
    the data dir keeps concurrent loads from several processes one at a time.
    """
    tables = read_bundle_tables(bundle_dir)  # fail on a bad bundle before starting anything
    with connect(data_dir=data_dir, database=database) as conn:
        lock = exclusive(conn.writer_lock_file) if conn.writer_lock_file else contextlib.nullcontext()
        with lock:
            return write_bundle(conn.driver, conn.database, tables, batch_size=batch_size, on_batch=on_batch)


def _plan(tables: BundleTables) -> list[_Step]:
    """The write steps of a bundle in dependency order (nodes before the relationships that need them)."""
    run_id = tables.run_id
    return [
        _Step("write_layers", R.layer_rows, 1, 1, "the Model node is missing", {"model_id": tables.model_name}),
        _Step(
            "write_neurons",
            R.neuron_rows,
            1,
            2,
            "the Run node or a Layer is missing",
            {"run_id": run_id, "model_id": tables.model_name},
        ),
        _Step("write_patches", R.patch_rows, 1, 0, "patch ids repeat", {"run_id": run_id}),
        _Step("write_neuron_groups", R.neuron_group_rows, 1, 1, "the Run node is missing", {"run_id": run_id}),
        _Step(
            "write_semantic_groups",
            R.semantic_group_rows,
            1,
            1,
            "semantic_groups.parquet names neurons absent from neurons.parquet",
            {"run_id": run_id},
        ),
        _Step(
            "write_in_group",
            R.in_group_rows,
            0,
            1,
            "neuron_groups.parquet names semantic groups absent from semantic_groups.parquet",
        ),
        _Step(
            "write_members",
            R.member_rows,
            0,
            1,
            "neuron_groups.parquet names neurons absent from neurons.parquet",
            {"run_id": run_id},
        ),
        _Step(
            "write_exemplars",
            R.exemplar_rows,
            0,
            1,
            "neuron_groups.parquet names exemplar patches absent from patches.parquet",
        ),
        _Step(
            "write_hyperedges",
            R.hyperedge_rows,
            0,
            1,
            "hyperedges.parquet names neurons or semantic groups absent from the other tables",
            {"run_id": run_id},
        ),
        _Step(
            "write_group_edges",
            R.group_edge_rows,
            0,
            1,
            "group_edges.parquet names groups absent from neuron_groups.parquet",
            {"run_id": run_id},
        ),
    ]


def _batches(tables: BundleTables, batch_size: int) -> Iterator[tuple[_Step, int, list[list[Any]], int]]:
    """(step, batch index, the batch's rows laid out for its query file, elements it writes), in write order."""
    for step in _plan(tables):
        query = load(step.query)
        for index, (batch, n_elements) in enumerate(R.batches(step.rows(tables), batch_size)):
            yield step, index, query.row_lists(batch), n_elements


def _clear_run(driver: neo4j.Driver, database: str, run_id: str) -> None:
    """Delete what an earlier ingest of `run_id` wrote (run-scoped nodes and IN_CIRCUIT), in bounded batches."""
    for query, limit in (
        ("delete_run_interventions", DELETE_BATCH_SIZE),
        ("delete_run_semantic_groups", DELETE_BATCH_SIZE),
        ("delete_run_neuron_groups", DELETE_BATCH_SIZE),
        ("delete_run_patches", 5 * DELETE_BATCH_SIZE),
        ("delete_run_circuit", 5 * DELETE_BATCH_SIZE),
    ):
        while run(driver, database, query, run_id=run_id, limit=limit)[0]["deleted"] > 0:
            pass


def _write_logit_of(driver: neo4j.Driver, database: str, tables: BundleTables) -> int:
    root = R.root_group_id(tables)
    if root is None:
        return 0
    class_id = R.class_row(tables.run)["id"]
    written = run(driver, database, "write_logit_of", run_id=tables.run_id, group_id=root, class_id=class_id)
    if written[0]["written"] != 1:
        raise StoreError(f"query 'write_logit_of' found no root group {root!r}; run {tables.run_id} stays incomplete")
    return 1


def _counts(tables: BundleTables) -> dict[str, int]:
    return {
        "n_neurons": tables.neurons.num_rows,
        "n_patches": tables.patches.num_rows,
        "n_semantic_groups": tables.semantic_groups.num_rows,
        "n_neuron_groups": tables.neuron_groups.num_rows,
        "n_hyperedges": tables.hyperedges.num_rows,
        "n_group_edges": tables.group_edges.num_rows,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
