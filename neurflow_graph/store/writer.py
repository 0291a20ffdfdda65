"""Write a run bundle into the graph store: batched `UNWIND $rows` queries from cypher/, one writer, crash-safe.

An ingest opens by marking the Run incomplete and deleting whatever an earlier (perhaps interrupted)
ingest of the same run left; it then CREATEs the run's nodes and relationships batch by batch (shared
Model/Layer/Class/Neuron nodes are MERGEd) and sets `complete = true` only in its very last
transaction. Re-running an interrupted ingest therefore converges to the graph of a clean one, and
ingesting the same bundle twice leaves identical counts.

The write steps run on up to `writers` connections at once, two steps together only when they touch
disjoint nodes: concurrent transactions then never change the same node (ArcadeDB refuses that with
retries; Neo4j would lock), and a step starts only after the earlier steps it shares nodes with. A step
touches whole labels, or one shard of a label: the hyper-edges, most of a circuit, are cut into
writers x writers blocks by parent and child shard and written as a Latin square, `writers` blocks at a
time that share no node.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

import neo4j
import pyarrow as pa

from neurflow_graph import ids
from neurflow_graph.bundle.tables import BundleTables, check_tables, read_bundle_tables
from neurflow_graph.errors import ArtifactError, ConfigError, StoreError
from neurflow_graph.store import rows as R
from neurflow_graph.store.connection import connect
from neurflow_graph.store.queries import execute, load, run
from neurflow_graph.store.schema import ensure_schema

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


class Label(enum.Enum):
    """The node labels the writer creates or links."""

    MODEL = "Model"
    LAYER = "Layer"
    CLASS = "Class"
    RUN = "Run"
    NEURON = "Neuron"
    PATCH = "Patch"
    SEMANTIC_GROUP = "SemanticGroup"
    NEURON_GROUP = "NeuronGroup"


class Rel(enum.Enum):
    """The relationship types the writer creates."""

    OF_MODEL = "OF_MODEL"
    FOR_CLASS = "FOR_CLASS"
    IN_LAYER = "IN_LAYER"
    IN_CIRCUIT = "IN_CIRCUIT"
    IN_RUN = "IN_RUN"
    HAS_SEMANTIC_GROUP = "HAS_SEMANTIC_GROUP"
    IN_GROUP = "IN_GROUP"
    MEMBER_OF = "MEMBER_OF"
    EXEMPLAR = "EXEMPLAR"
    DRIVES = "DRIVES"
    FEEDS = "FEEDS"
    LOGIT_OF = "LOGIT_OF"
    SHARES = "SHARES"


@dataclass(frozen=True)
class Nodes:
    """The nodes of one label a step creates or links: all of them, or one shard (`shard` of `blocks` shards)."""

    label: Label
    shard: int | None = None

    def overlaps(self, other: Nodes) -> bool:
        """Whether the two may hold a common node: one label, whole or in the same shard."""
        return self.label is other.label and (self.shard is None or other.shard is None or self.shard == other.shard)


@dataclass(frozen=True)
class WriteStep:
    """One write query of the plan: its file, its rows, the nodes it touches, the relationships it creates.

    Each batch's own result counts what it wrote (`written`, checked against the rows' element count, and the
    `nodes` and `relationships` it created or merged), so no count is kept here.
    """

    query: str
    rows: Callable[[BundleTables], pa.Table]
    touches: frozenset[Nodes]
    creates: frozenset[Rel]
    missing: str  # what a short write means, for the error message
    params: Mapping[str, Any] = field(default_factory=dict)

    def overlaps(self, other: WriteStep) -> bool:
        """Whether the two steps may touch a common node (then the later one waits for the earlier)."""
        return any(a.overlaps(b) for a in self.touches for b in other.touches)


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
        was_complete = any(r["complete"] is True for r in run(driver, database, "run_status", run_id=run_id))
        class_id = R.class_row(tables.run_json)["id"]
        _check_shared_nodes(driver, database, tables)
        earlier = {r["class_id"] for r in run(driver, database, "run_classes", runs=[run_id])} - {class_id}
        (opened,) = run(
            driver,
            database,
            "write_run_start",
            run_id=run_id,
            run_props=R.run_properties(tables.run_json, str(tables.path) if tables.path else None, _now()),
            model_props=R.model_row(tables.run_json),
            class_props=R.class_row(tables.run_json),
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
        class_runs = run(driver, database, "class_runs", class_id=class_id)
        rels += _write_shares(driver, database, tables, [r["run_id"] for r in class_runs], batch_size)
        nodes, n_batches = written.nodes, written.batches
        counts = _counts(tables)
        completed_at = _now(precise=True)
        mine = {"run_id": run_id, "created_at": tables.run_json.get("created_at"), "completed_at": completed_at}
        latest = latest_run([*(r for r in class_runs if r["complete"] and r["run_id"] != run_id), mine])
        _refresh_class_neurons(driver, database, class_id, latest)  # before completing: a crash leaves it incomplete
        done = run(driver, database, "write_run_complete", run_id=run_id, counts=counts, completed_at=completed_at,
                   latest_run=latest)
        if not done or done[0]["complete"] is not True:
            raise StoreError(f"run {run_id} vanished from the store during its ingest; write it again")
        return WriteReport(run_id, nodes, rels, n_batches, time.perf_counter() - started, counts)


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

    What the CLI `load BUNDLE` calls: nothing is recomputed. With the embedded server a file lock in
    the data dir keeps concurrent loads from several processes one at a time.
    """
    tables = read_bundle_tables(bundle_dir)  # fail on a bad bundle before starting anything
    with connect(data_dir=data_dir, database=database) as conn:
        with conn.writing():
            return write_run_graph(
                conn.driver, conn.database, tables, batch_size=batch_size, writers=writers, on_batch=on_batch
            )


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


def run_steps(steps: Sequence[WriteStep], work: Callable[[WriteStep, threading.Event], None], writers: int) -> None:
    """Call `work(step, stopped)` for every step on up to `writers` threads (this one included).

    A step starts once every earlier step it may share nodes with (`WriteStep.overlaps`) has finished, so steps run
    together only on disjoint nodes. The first exception sets `stopped` (work checks it between
    batches), lets no further step start, and is raised here once every running step has returned.
    """
    lock = threading.Condition()
    started: set[int] = set()
    finished: set[int] = set()
    stopped = threading.Event()
    errors: list[BaseException] = []

    def ready(i: int) -> bool:
        return all(j in finished for j in range(i) if steps[j].overlaps(steps[i]))

    def next_step() -> int | None:
        with lock:
            while not stopped.is_set():
                waiting = [i for i in range(len(steps)) if i not in started]
                if not waiting:
                    return None
                i = next((i for i in waiting if ready(i)), None)
                if i is not None:
                    started.add(i)
                    return i
                lock.wait()
            return None

    def worker() -> None:
        while (i := next_step()) is not None:
            try:
                work(steps[i], stopped)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                    stopped.set()
                    lock.notify_all()
                return
            with lock:
                finished.add(i)
                lock.notify_all()

    threads = [threading.Thread(target=worker, name=f"store-writer-{k}") for k in range(1, writers)]
    for thread in threads:
        thread.start()
    try:
        worker()
        for thread in threads:
            thread.join()
    except BaseException:  # interrupted outside a step (e.g. Ctrl-C while waiting): stop the others too
        with lock:
            stopped.set()
            lock.notify_all()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    if len(finished) != len(steps):  # cannot happen without an error above; never report a partial write
        raise StoreError(f"only {len(finished)} of {len(steps)} write steps finished")


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
    model, klass = R.model_row(tables.run_json), R.class_row(tables.run_json)
    (stored,) = run(driver, database, "shared_nodes", model_id=model["id"], class_id=klass["id"])
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
        while run(driver, database, query, run_id=run_id, limit=limit)[0]["deleted"] > 0:
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
    latest = latest_run(r for r in run(driver, database, "class_runs", class_id=class_id) if r["complete"])
    _refresh_class_neurons(driver, database, class_id, latest)
    run(driver, database, "write_class_latest", class_id=class_id, run_id=latest)


def _refresh_class_neurons(driver: neo4j.Driver, database: str, class_id: str, latest: str | None) -> None:
    """Point the per-neuron class lists (`Neuron.class_ids`, `class_groups`) at the class's latest complete run.

    Called when a complete run of the class turns incomplete (a re-ingest starts) and before a run completes, so
    the lists that shared_neurons.cypher reads always describe the latest complete runs, even after an interruption.
    """
    run(driver, database, "write_class_neurons_clear", class_id=class_id)
    if latest is not None:
        run(driver, database, "write_class_neurons", class_id=class_id, run_id=latest)


SHARES_FLOOR = 0.3
"""Smallest Jaccard index of member neurons for which two groups of different classes get a SHARES relationship."""


def _write_shares(driver: neo4j.Driver, database: str, tables: BundleTables, skip_runs: list[str],
                  batch_size: int) -> int:
    """SHARES {jaccard, shared, neurons} from each non-root group of the run to every group of another class's run (same
    layer: a neuron is in one layer) whose member neurons overlap it with Jaccard >= SHARES_FLOOR; returns how many.

    Reads the memberships of the run's neurons once (`shares_memberships`) and counts the overlaps here; raises
    each group's `shares_best` bound (`write_shares_best`).
    """
    columns = (tables.neuron_groups.column(c).to_pylist() for c in ("group_id", "neuron_ids", "is_root"))
    groups = [(ids.group_node_id(tables.run_id, g), set(members)) for g, members, root in zip(*columns, strict=True)
              if not root and members]
    neurons = sorted({n for _, members in groups for n in members})
    if not neurons:
        return 0
    memberships: dict[str, frozenset[str]] = {}
    size: dict[str, int] = {}
    for row in run(driver, database, "shares_memberships", neurons=neurons, skip_runs=skip_runs):
        memberships[row["neuron"]] = frozenset(row["groups"])
        size.update(zip(row["groups"], row["sizes"], strict=True))
    pairs, best = [], {}
    for a, members in groups:
        shared = Counter(b for n in members for b in memberships.get(n, ()))
        for b, k in sorted(shared.items()):
            jaccard = k / (len(members) + size[b] - k)
            if jaccard >= SHARES_FLOOR:
                both = sorted(n for n in members if b in memberships.get(n, ()))
                low, high = sorted((a, b))  # one direction whatever the order the runs were ingested in
                pairs.append({"a": low, "b": high, "jaccard": jaccard, "shared": k, "neurons": both})
                for g in (a, b):
                    best[g] = max(best.get(g, 0.0), shares_key(jaccard, k))
    written = _write_rows(driver, database, "write_shares", pa.Table.from_pylist(pairs, schema=_SHARES_SCHEMA),
                          batch_size, tables.run_id)
    _write_rows(driver, database, "write_shares_best", pa.table({"group": list(best), "key": list(best.values())},
                                                               schema=_BEST_SCHEMA), batch_size, tables.run_id)
    node_ids = (ids.group_node_id(tables.run_id, g) for g in tables.neuron_groups.column("group_id").to_pylist())
    layer_of = dict(zip(node_ids, tables.neuron_groups.column("layer").to_pylist(), strict=True))
    _write_shares_top(driver, database, tables, [(layer_of.get(p["a"]) or layer_of[p["b"]], p) for p in pairs])
    return written


SHARES_TOP = 500
"""SHARES pairs each Layer keeps in its top list (`Layer.shares_top_*`): the store's top pairs of that layer, read by
shared_groups without a class (top 100 over the store) instead of the SHARES of the groups they join."""


def pair_rank(pair: Mapping[str, Any]) -> tuple[float, int, str, str]:
    """The order shared_groups answers pairs in: Jaccard, then shared neurons, descending, then group_a, group_b."""
    return (-pair["jaccard"], -pair["shared"], pair["group_a"], pair["group_b"])


def ordered_pair(x: str, y: str) -> tuple[str, str]:
    """(group_a, group_b) of two group node ids: group_a is in the run with the smaller id (then the smaller id)."""
    a, b = sorted((x, y), key=lambda g: (ids.run_of_group_node(g), g))
    return a, b


def merge_shares_top(top: Mapping[str, Any] | None, pairs: Iterable[Mapping[str, Any]],
                     keep: int | None = None) -> dict[str, Any]:
    """A layer's top list with `pairs` ({a, b, jaccard, shared}) merged in: the best `keep` by `pair_rank`.

    The list is the top `keep` of every pair ever merged whatever the order they came in (a pair merged again, as
    when a run is written again, replaces itself), so a Ray ingest and a sequential one give the same list.
    `dropped` says whether pairs fell off its end: then it holds every pair ranking before its last entry.
    """
    top, keep = top or {}, SHARES_TOP if keep is None else keep
    entries = {(a, b): (j, k) for a, b, j, k in zip(*(top.get(f) or [] for f in _TOP_FIELDS), strict=True)}
    for p in pairs:
        a, b = ordered_pair(p["a"], p["b"])
        entries[a, b] = (float(p["jaccard"]), int(p["shared"]))
    ranked = sorted(({"group_a": a, "group_b": b, "jaccard": j, "shared": k} for (a, b), (j, k) in entries.items()),
                    key=pair_rank)
    kept = ranked[:keep]
    return {"a": [p["group_a"] for p in kept], "b": [p["group_b"] for p in kept],
            "jaccard": [p["jaccard"] for p in kept], "shared": [p["shared"] for p in kept],
            "dropped": bool(top.get("dropped")) or len(ranked) > keep}


_TOP_FIELDS = ("a", "b", "jaccard", "shared")


def _write_shares_top(driver: neo4j.Driver, database: str, tables: BundleTables,
                      pairs: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Merge the run's new SHARES pairs into the top list of their layer (`shares_top` read, `write_shares_top`)."""
    if not pairs:
        return
    by_layer: dict[str, list[Mapping[str, Any]]] = {}
    for layer, p in pairs:
        by_layer.setdefault(ids.layer_id(tables.model_name, layer), []).append(p)
    stored = {r["layer_id"]: r for r in run(driver, database, "shares_top", layer=None) if r["layer_id"] in by_layer}
    rows = []
    for layer_id, new in sorted(by_layer.items()):
        merged = merge_shares_top(stored.get(layer_id), new)
        rows.append([layer_id, merged["a"], merged["b"], merged["jaccard"], merged["shared"], merged["dropped"]])
    done = run(driver, database, "write_shares_top", rows=rows)[0]["written"]
    if done != len(rows):
        raise StoreError(f"query 'write_shares_top' wrote {done} of {len(rows)} layers: a Layer vanished during the "
                         f"ingest; run {tables.run_id} stays incomplete")


def shares_key(jaccard: float, shared: int) -> float:
    """The rank key of a SHARES pair: by Jaccard, then shared neurons (shared_groups' order, as one number)."""
    return jaccard * 1e6 + shared


def _write_rows(driver: neo4j.Driver, database: str, name: str, rows: pa.Table, batch_size: int, run_id: str) -> int:
    """Write `rows` with query `name` batch by batch; a short write is a StoreError (the run stays incomplete)."""
    query = load(name)
    written = 0
    for batch, expected in R.batches(rows, batch_size):
        done = execute(driver, database, name, {"rows": query.row_lists(batch)}).records[0]["written"]
        if done != expected:
            raise StoreError(f"query {name!r} wrote {done} of {expected} rows: a group vanished during the ingest; "
                             f"run {run_id} stays incomplete")
        written += done
    return written


_SHARES_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("jaccard", pa.float64()), ("shared", pa.int64()),
                            ("neurons", pa.list_(pa.string()))])
_BEST_SCHEMA = pa.schema([("group", pa.string()), ("key", pa.float64())])


def _write_logit_of(driver: neo4j.Driver, database: str, tables: BundleTables) -> int:
    root = R.root_group_id(tables)
    if root is None:
        return 0
    class_id = R.class_row(tables.run_json)["id"]
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


def _now(precise: bool = False) -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds" if precise else "seconds")
