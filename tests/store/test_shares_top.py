"""The layers' top lists of SHARES pairs (Layer.shares_top_*) and shared_groups answered from them, on the real
embedded store holding real digits runs, against a brute-force Jaccard count over the bundles' Parquet tables.

The lists are cut to two pairs a layer here (the writer keeps 500), so the answers go through the exact cut-off
rule and, past it, through shared_groups.cypher.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from neurflow_graph.query import fetch_shared_groups, run_query
from neurflow_graph.store import connect, write_run_graph
from neurflow_graph.store import shares as S
from neurflow_graph.store.connection import Connection

KEEP = 2


def _groups(bundle: Path) -> list[dict[str, Any]]:
    import json

    run = json.loads((bundle / "run.json").read_text())
    rows = pq.read_table(bundle / "neuron_groups.parquet").to_pylist()
    return [{"id": f"{run['run_id']}/{g['group_id']}", "run": run["run_id"], "class": run["class"]["index"],
             "layer": g["layer"], "neurons": set(g["neuron_ids"])} for g in rows if not g["is_root"]]


def _brute_force(bundles: list[Path]) -> list[tuple[str, str, str, float, int, list[str]]]:
    """Every pair of groups of different classes in one layer with Jaccard >= the floor, in shared_groups' order."""
    groups = [g for b in bundles for g in _groups(b)]
    pairs = []
    for i, x in enumerate(groups):
        for y in groups[i + 1:]:
            both = x["neurons"] & y["neurons"]
            if x["class"] == y["class"] or x["layer"] != y["layer"] or not both:
                continue
            jaccard = len(both) / len(x["neurons"] | y["neurons"])
            if jaccard >= S.SHARES_FLOOR:
                a, b = sorted((x, y), key=lambda g: (g["run"], g["id"]))
                pairs.append((a["id"], b["id"], x["layer"], jaccard, len(both), sorted(both)))
    return sorted(pairs, key=lambda p: (-p[3], -p[4], p[0], p[1]))


class Recording:
    """A real connection that notes which query files it ran (to tell the top lists' answer from the fallback)."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.names = conn, []

    def run(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        self.names.append(name)
        return self.conn.run(name, **params)


@pytest.fixture(scope="module")
def bundles(digits_bundle_dir: Path, digits_bundle_dirs) -> list[Path]:
    return [digits_bundle_dir, digits_bundle_dirs(5), digits_bundle_dirs(8)]


def _write(data_dir: Path, database: str, paths: list[Path]) -> Connection:
    conn = connect(data_dir, database=database)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "SHARES_TOP", KEEP)
        for path in paths:
            write_run_graph(conn.driver, conn.database, path)
    return conn


@pytest.fixture(scope="module")
def store(data_dir: Path, bundles: list[Path]) -> Iterator[Connection]:
    with _write(data_dir, "shares_top", bundles) as conn:
        yield conn


def test_the_lists_are_cut(store: Connection, bundles: list[Path]) -> None:
    """Each layer's list is its best KEEP pairs of the brute-force ranking; `dropped` where it had more."""
    want = _brute_force(bundles)
    rows = {r["layer"]: r for r in store.run("shares_top", layer=None)}
    for layer in {p[2] for p in want}:
        mine = [p for p in want if p[2] == layer]
        row = rows[layer]
        assert list(zip(row["a"], row["b"], row["shared"], strict=True)) == [(p[0], p[1], p[4]) for p in mine[:KEEP]]
        assert row["jaccard"] == pytest.approx([p[3] for p in mine[:KEEP]])
        assert row["dropped"] is (len(mine) > KEEP)
    assert any(r["dropped"] for r in rows.values())  # else the cut-off rule is not exercised


@pytest.mark.parametrize("min_jaccard", [0.0, 0.5])
@pytest.mark.parametrize("layer", [None, "conv2"])
def test_top_pairs_over_the_store_are_the_brute_force_ranking(store: Connection, bundles: list[Path],
                                                              min_jaccard: float, layer: str | None) -> None:
    """The top N for every N, answered from the lists while they can tell, by shared_groups.cypher past that."""
    want = [p for p in _brute_force(bundles) if p[3] >= min_jaccard and layer in (None, p[2])]
    answered_by = set()
    for limit in range(1, len(want) + 3):
        recording = Recording(store)
        got = run_query(recording, "shared_groups", min_jaccard=min_jaccard, layer=layer, limit=limit)
        assert [(g["group_a"], g["group_b"], g["layer"], g["shared"], g["shared_neurons"]) for g in got] == \
            [(p[0], p[1], p[2], p[4], p[5]) for p in want[:limit]]
        assert [g["jaccard"] for g in got] == pytest.approx([p[3] for p in want[:limit]])
        assert all(g["class_a"] != g["class_b"] and g["n_a"] > 0 and g["n_b"] > 0 for g in got)
        answered_by.add("fallback" if "shared_groups" in recording.names else "lists")
    assert "lists" in answered_by  # the first pairs come from the lists alone
    assert len(want) > 0


def test_one_class_is_its_pairs_of_the_brute_force_ranking(store: Connection, bundles: list[Path]) -> None:
    want = [p for p in _brute_force(bundles) if any(g.startswith("digits-c5-") for g in p[:2])]
    for limit in (1, 3, 10_000):
        got = fetch_shared_groups(store, min_jaccard=0.0, cls="digits/5", limit=limit)
        assert [(g.group_a, g.group_b, g.shared) for g in got] == [(p[0], p[1], p[4]) for p in want[:limit]]
        assert all("digits/5" in (g.class_a, g.class_b) for g in got)


def test_any_order_and_a_rewrite_give_the_same_lists(data_dir: Path, store: Connection, bundles: list[Path]) -> None:
    """The lists are the top of every pair ever merged, whatever the order; a run written again replaces its pairs."""
    with _write(data_dir, "shares_top_reversed", [*reversed(bundles), bundles[1]]) as other:
        assert other.run("shares_top", layer=None) == store.run("shares_top", layer=None)


def test_merge_does_not_depend_on_the_order_pairs_come_in() -> None:
    """merge_shares_top over any split and order of the same pairs gives the one top list."""
    rng = random.Random(0)
    pairs = [{"a": f"r{rng.randrange(5)}/l/g{i}", "b": f"r{rng.randrange(5, 9)}/l/g{i}",
              "jaccard": rng.choice([0.3, 0.5, 1.0]), "shared": rng.randrange(1, 4)} for i in range(200)]
    whole = S.merge_shares_top(None, pairs, keep=30)
    assert whole["dropped"] and len(whole["a"]) == 30
    for _ in range(5):
        rng.shuffle(pairs)
        top = None
        for start in range(0, len(pairs), 23):
            top = S.merge_shares_top(top, pairs[start:start + 23], keep=30)
        assert top == whole
