"""SHARES: groups of different classes whose member neurons overlap, written with each run and ranked for readers.

One module owns both sides: the writer calls `write_shares` as a run is stored (the pairs, each group's best
key, each layer's top list); `query/library.py` ranks pairs with `pair_rank` and `ordered_pair`. Imports no
torch, so `query` stays light (tests/test_cli_startup.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import neo4j
import pyarrow as pa

from neurflow_graph import ids
from neurflow_graph.errors import StoreError
from neurflow_graph.store.queries import execute, load, run_cypher

if TYPE_CHECKING:
    from neurflow_graph.bundle.tables import BundleTables


SHARES_FLOOR = 0.3
"""Smallest Jaccard index of member neurons for which two groups of different classes get a SHARES relationship."""


def write_shares(driver: neo4j.Driver, database: str, tables: BundleTables, skip_runs: list[str],
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
    for row in run_cypher(driver, database, "shares_memberships", neurons=neurons, skip_runs=skip_runs):
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
    stored = {r["layer_id"]: r for r in run_cypher(driver, database, "shares_top", layer=None)
              if r["layer_id"] in by_layer}
    rows = []
    for layer_id, new in sorted(by_layer.items()):
        merged = merge_shares_top(stored.get(layer_id), new)
        rows.append([layer_id, merged["a"], merged["b"], merged["jaccard"], merged["shared"], merged["dropped"]])
    done = run_cypher(driver, database, "write_shares_top", rows=rows)[0]["written"]
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
    from neurflow_graph.store.rows import batches  # here: rows reads bundles, which loads torch

    for batch, expected in batches(rows, batch_size):
        done = execute(driver, database, name, {"rows": query.row_lists(batch)}).records[0]["written"]
        if done != expected:
            raise StoreError(f"query {name!r} wrote {done} of {expected} rows: a group vanished during the ingest; "
                             f"run {run_id} stays incomplete")
        written += done
    return written


_SHARES_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("jaccard", pa.float64()), ("shared", pa.int64()),
                            ("neurons", pa.list_(pa.string()))])
_BEST_SCHEMA = pa.schema([("group", pa.string()), ("key", pa.float64())])
