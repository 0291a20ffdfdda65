"""A run's lifecycle in the graph store: open it, clear what an earlier ingest left, write it, complete it.

Batched `UNWIND $rows` queries from cypher/, one writer, crash-safe. The write scheduler is
`store/schedule.py`; SHARES between groups of different classes, written here, is `store/shares.py`.

An ingest opens by marking the Run incomplete and deleting whatever an earlier (perhaps interrupted)
ingest of the same run left; it then CREATEs the run's nodes and relationships batch by batch (shared
Model/Layer/Class/Neuron nodes are MERGEd) and sets `complete = true` only in its very last
transaction. Re-running an interrupted ingest therefore converges to the graph of a clean one, and
ingesting the same bundle twice leaves identical counts.

The write steps run on up to `writers` connections at once (`store/schedule.py`). A step
touches whole labels, or one shard of a label: the hyper-edges, most of a circuit, are cut into
writers x writers blocks by parent and child shard and written as a Latin square, `writers` blocks at a
time that share no node.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import neo4j

from neurflow_graph.bundle.tables import BundleTables, check_tables, read_bundle_tables
from neurflow_graph.errors import ArtifactError, ConfigError, StoreError
from neurflow_graph.store import rows as R
from neurflow_graph.store.connection import connect
from neurflow_graph.store.queries import execute, load, run_cypher
from neurflow_graph.store.schedule import Label, Nodes, Rel, WriteStep, run_steps
from neurflow_graph.store.schema import ensure_schema
from neurflow_graph.store.shares import write_shares

if TYPE_CHECKING:
    from neurflow_graph.store.connection import Connection

DEFAULT_BATCH_SIZE = 10_000
"""Graph elements per write transaction: the fastest size measured (docs/performance.md, "Writing to the store")."""
DEFAULT_WRITERS = 2
"""Connections writing at once: two beat one, the hyper-edges written as a Latin square of blocks on both
(docs/performance.md, "Writing to the store")."""
CONFLICT_RETRIES = 3
"""Tries of a write batch, each at once, while it fails on a retryable conflict (ArcadeDB: hyper-edge blocks
written together append records to the same pages; 1 to 3 of 26 batches failed in our runs), before the
driver's own retries, which wait a second or more: that wait had eaten what the second writer gained."""
DELETE_BATCH_SIZE = 2_000
"""Nodes per delete transaction when a run is cleared (each carries its relationships)."""

BatchHook = Callable[[str, int], None]
"""`on_batch(query_name, batch_index)`: called after each committed write batch (progress, tests), one
call at a time whatever the number of writers."""

_WRITE_LOCK = threading.Lock()  # one ingest per process (two could MERGE one key at once: ArcadeDB fails)


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


def write_run_graph(
    driver: neo4j.Driver,
    database: str,
    bundle: str | os.PathLike[str] | BundleTables,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = DEFAULT_WRITERS,
    on_batch: BatchHook | None = None,
) -> WriteReport:
    """Write one run bundle (a directory or its tables) into `database`; returns a WriteReport.

    `writers` connections write independent steps at once (1: one step after another, in plan order).
    `on_batch(query_name, batch_index)` runs after each committed batch; an exception it raises stops
    the ingest there, leaving the run incomplete (as a crash would) until the bundle is written again.
    """
    for name, value in (("batch_size", batch_size), ("writers", writers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    tables = bundle if isinstance(bundle, BundleTables) else read_bundle_tables(bundle)
    check_tables(tables)
    run_id = tables.run_id
    with _WRITE_LOCK:
        started = time.perf_counter()
        ensure_schema(driver, database)
        was_complete = any(r["complete"] is True for r in run_cypher(driver, database, "run_status", run_id=run_id))
        class_id = R.class_row(tables.meta)["id"]
        _check_shared_nodes(driver, database, tables)
        earlier = {r["class_id"] for r in run_cypher(driver, database, "run_classes", runs=[run_id])} - {class_id}
        (opened,) = run_cypher(
            driver,
            database,
            "write_run_start",
            run_id=run_id,
            run_props=R.run_properties(tables.meta, str(tables.path) if tables.path else None, _now()),
            model_props=R.model_row(tables.meta),
            class_props=R.class_row(tables.meta),
        )
        if was_complete:  # it may have been the class's latest complete run: flag the next one, refresh the lists
            _settle_class(driver, database, class_id)
        for other in sorted(earlier):  # a run stored (wrongly) under another class leaves it: settle that one too
            _settle_class(driver, database, other)
        _clear_run(driver, database, run_id)
        written = _Tally(nodes=opened["nodes"], rels=opened["relationships"])

        def write_step(step: WriteStep, stopped: threading.Event) -> None:
            query = load(step.query)
            for index, (batch, expected) in enumerate(R.batches(step.rows(tables), batch_size)):
                if stopped.is_set():
                    return
                params = {"rows": query.row_lists(batch), **step.params}
                result = execute(driver, database, step.query, params, retries_at_once=CONFLICT_RETRIES)
                counted = result.records[0]
                done = counted["written"]
                if done != expected:
                    raise StoreError(
                        f"query {step.query!r} wrote {done} of {expected} elements: {step.missing}; "
                        f"run {run_id} stays incomplete"
                    )
                with written.lock:
                    written.nodes += counted["nodes"]
                    written.rels += counted["relationships"]
                    written.batches += 1
                    if on_batch is not None:
                        on_batch(step.query, index)

        blocks = writers if tables.hyperedges.num_rows > batch_size else 1  # one batch needs no sharing
        run_steps(_plan(tables, blocks), write_step, writers)
        rels = written.rels + _write_logit_of(driver, database, tables)
        class_runs = run_cypher(driver, database, "class_runs", class_id=class_id)
        rels += write_shares(driver, database, tables, [r["run_id"] for r in class_runs], batch_size)
        nodes, n_batches = written.nodes, written.batches
        counts = _counts(tables)
        completed_at = _now(precise=True)
        mine = {"run_id": run_id, "created_at": tables.meta.created_at, "completed_at": completed_at}
        latest = latest_run([*(r for r in class_runs if r["complete"] and r["run_id"] != run_id), mine])
        _refresh_class_neurons(driver, database, class_id, latest)  # before completing: a crash leaves it incomplete
        done = run_cypher(driver, database, "write_run_complete", run_id=run_id, counts=counts,
                          completed_at=completed_at, latest_run=latest)
        if not done or done[0]["complete"] is not True:
            raise StoreError(f"run {run_id} vanished from the store during its ingest; write it again")
        return WriteReport(run_id, nodes, rels, n_batches, time.perf_counter() - started, counts)


def write_run(
    conn: Connection,
    bundle: str | os.PathLike[str] | BundleTables,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = DEFAULT_WRITERS,
    on_batch: BatchHook | None = None,
) -> WriteReport:
    """Write one bundle into ``conn``'s store through its single writer (the writer lock held): what `load`,
    `ingest` and the Ray driver all call (``jobs.store_bundle`` adds a progress bar)."""
    with conn.writing():
        return write_run_graph(conn.driver, conn.database, bundle, batch_size=batch_size, writers=writers,
                               on_batch=on_batch)


def load_bundle(
    bundle_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    database: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = DEFAULT_WRITERS,
    on_batch: BatchHook | None = None,
) -> WriteReport:
    """Load a bundle directory into the configured store (Neo4j via NEO4J_URI, else the embedded server).

    Nothing is recomputed. With the embedded server a file lock in the data dir keeps concurrent loads from
    several processes one at a time (``write_run``).
    """
    tables = read_bundle_tables(bundle_dir)  # fail on a bad bundle before starting anything
    with connect(data_dir=data_dir, database=database) as conn:
        return write_run(conn, tables, batch_size=batch_size, writers=writers, on_batch=on_batch)


def _plan(tables: BundleTables, blocks: int = 1) -> list[WriteStep]:
    """The write steps of a bundle in dependency order (nodes before the relationships that need them).

    `touches` names every label whose nodes a step creates or gains relationships on; a step needing
    nodes of a label touches it too, so ordering steps that share a label also orders dependencies. The
    hyper-edges come as `blocks` x `blocks` steps in Latin-square order: block (i, (i + r) % blocks) in
    round r, so the blocks of one round share no parent and no child shard and may run together.
    """
    run_id, model = tables.run_id, tables.model_name
    L = Label

    def step(query: str, rows, touches: tuple[Nodes | Label, ...], creates: tuple[Rel, ...], missing: str,
             **params: Any) -> WriteStep:
        nodes = frozenset(t if isinstance(t, Nodes) else Nodes(t) for t in touches)
        return WriteStep(query, rows, nodes, frozenset(creates), missing, params)

    def hyperedge_block(i: int, j: int) -> WriteStep:
        sharded = blocks > 1
        touches = (Nodes(L.SEMANTIC_GROUP, i if sharded else None), Nodes(L.NEURON, j if sharded else None))
        return step("write_hyperedges", partial(R.hyperedge_rows, block=(i, j), blocks=blocks), touches,
                    (Rel.DRIVES,), "hyperedges.parquet names neurons or semantic groups absent from the other tables",
                    run_id=run_id)

    return [
        step("write_layers", R.layer_rows, (L.LAYER, L.MODEL), (Rel.OF_MODEL,), "the Model node is missing",
             model_id=model),
        step("write_neurons", R.neuron_rows, (L.NEURON, L.LAYER, L.RUN), (Rel.IN_LAYER, Rel.IN_CIRCUIT),
             "the Run node or a Layer is missing", run_id=run_id, model_id=model),
        step("write_patches", R.patch_rows, (L.PATCH,), (), "patch ids repeat", run_id=run_id),
        step("write_neuron_groups", R.neuron_group_rows, (L.NEURON_GROUP, L.RUN), (Rel.IN_RUN,),
             "the Run node is missing", run_id=run_id),
        step("write_semantic_groups", R.semantic_group_rows, (L.SEMANTIC_GROUP, L.NEURON), (Rel.HAS_SEMANTIC_GROUP,),
             "semantic_groups.parquet names neurons absent from neurons.parquet", run_id=run_id),
        step("write_in_group", R.in_group_rows, (L.SEMANTIC_GROUP, L.NEURON_GROUP), (Rel.IN_GROUP,),
             "neuron_groups.parquet names semantic groups absent from semantic_groups.parquet"),
        step("write_members", R.member_rows, (L.NEURON, L.NEURON_GROUP), (Rel.MEMBER_OF,),
             "neuron_groups.parquet names neurons absent from neurons.parquet", run_id=run_id),
        step("write_exemplars", R.exemplar_rows, (L.NEURON_GROUP, L.PATCH), (Rel.EXEMPLAR,),
             "neuron_groups.parquet names exemplar patches absent from patches.parquet"),
        *(hyperedge_block(i, (i + r) % blocks) for r in range(blocks) for i in range(blocks)),
        step("write_group_edges", R.group_edge_rows, (L.NEURON_GROUP,), (Rel.FEEDS,),
             "group_edges.parquet names groups absent from neuron_groups.parquet", run_id=run_id),
        step("write_group_faithfulness", R.group_faithfulness_rows, (L.NEURON_GROUP,), (),
             "run.json faithfulness.groups names groups absent from neuron_groups.parquet"),
    ]


@dataclass
class _Tally:
    nodes: int = 0
    rels: int = 0
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _check_shared_nodes(driver: neo4j.Driver, database: str, tables: BundleTables) -> None:
    """Refuse a bundle that would rename a shared Model or Class node (its name, preset, class count or index):
    a run adds to the nodes other runs share and never changes what they say. One ArtifactError line, before any
    write."""
    model, klass = R.model_row(tables.meta), R.class_row(tables.meta)
    (stored,) = run_cypher(driver, database, "shared_nodes", model_id=model["id"], class_id=klass["id"])
    wanted = {"model_name": model["name"], "model_preset": model.get("preset"),
              "model_num_classes": model.get("num_classes"), "class_name": klass["name"],
              "class_model": klass["model"], "class_index": klass["index"]}
    for key, value in wanted.items():
        if stored[key] is not None and value is not None and stored[key] != value:
            node, field = key.split("_", 1)
            node_id = model["id"] if node == "model" else klass["id"]
            raise ArtifactError(
                f"run {tables.run_id} gives {node.capitalize()} {node_id!r} {field} {value!r}, the store has "
                f"{stored[key]!r}; a run never renames a node other runs share: fix the bundle's run.json "
                f"({'model' if node == 'model' else 'class'}) or use another database"
            )


def _clear_run(driver: neo4j.Driver, database: str, run_id: str) -> None:
    """Delete what an earlier ingest of `run_id` wrote (run-scoped nodes and IN_CIRCUIT), in bounded batches."""
    for query, limit in (
        ("delete_run_interventions", DELETE_BATCH_SIZE),
        ("delete_run_semantic_groups", DELETE_BATCH_SIZE),
        ("delete_run_neuron_groups", DELETE_BATCH_SIZE),
        ("delete_run_patches", 5 * DELETE_BATCH_SIZE),
        ("delete_run_circuit", 5 * DELETE_BATCH_SIZE),
    ):
        while run_cypher(driver, database, query, run_id=run_id, limit=limit)[0]["deleted"] > 0:
            pass


def latest_run(runs: Iterable[Mapping[str, Any]]) -> str | None:
    """The one definition of a class's latest complete run, among `runs` ({run_id, created_at, completed_at}).

    Newest `created_at` (when the run was computed), then newest `completed_at` (when its ingest completed), then
    the greatest run id, which is unique: never a tie. The writer flags it (`Run.latest`); queries read the flag.
    """
    best = max(runs, key=lambda r: (_instant(r.get("created_at")), _instant(r.get("completed_at")), r["run_id"]),
               default=None)
    return None if best is None else str(best["run_id"])


def _instant(text: str | None) -> datetime:
    """An ISO timestamp as an aware datetime (naive ones read as UTC); missing or unreadable ones sort first."""
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _settle_class(driver: neo4j.Driver, database: str, class_id: str) -> None:
    """Flag the class's latest complete run and point the per-neuron class lists at it (after one turned incomplete)."""
    latest = latest_run(r for r in run_cypher(driver, database, "class_runs", class_id=class_id) if r["complete"])
    _refresh_class_neurons(driver, database, class_id, latest)
    run_cypher(driver, database, "write_class_latest", class_id=class_id, run_id=latest)


def _refresh_class_neurons(driver: neo4j.Driver, database: str, class_id: str, latest: str | None) -> None:
    """Point the per-neuron class lists (`Neuron.class_ids`, `class_groups`) at the class's latest complete run.

    Called when a complete run of the class turns incomplete (a re-ingest starts) and before a run completes, so
    the lists that shared_neurons.cypher reads always describe the latest complete runs, even after an interruption.
    """
    run_cypher(driver, database, "write_class_neurons_clear", class_id=class_id)
    if latest is not None:
        run_cypher(driver, database, "write_class_neurons", class_id=class_id, run_id=latest)


def _write_logit_of(driver: neo4j.Driver, database: str, tables: BundleTables) -> int:
    root = R.root_group_id(tables)
    if root is None:
        return 0
    class_id = R.class_row(tables.meta)["id"]
    written = run_cypher(driver, database, "write_logit_of", run_id=tables.run_id, group_id=root, class_id=class_id)
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


def _now(precise: bool = False) -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds" if precise else "seconds")
