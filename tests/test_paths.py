"""The k-best path search behind `bias_paths` against brute-force enumeration (networkx) on random layered DAGs."""

from __future__ import annotations

import math
import random

import networkx as nx
import pytest

from neurflow_graph.query.paths import best_paths, bias_path_rows

WEIGHTS = (-2.0, -1.0, -0.5, -0.25, 0.125, 0.25, 0.5, 1.0, 2.0)  # powers of two: products are exact, ties real


def layered_dag(seed: int) -> tuple[list[tuple[str, str, float]], str]:
    """Edges child -> parent between adjacent layers (as FEEDS), layer 0 holding only the root."""
    rng = random.Random(seed)
    layers = [["L0/g0"]] + [[f"L{i}/g{j}" for j in range(rng.randint(1, 4))] for i in range(1, rng.randint(2, 6))]
    edges = [(child, parent, rng.choice(WEIGHTS))
             for upper, lower in zip(layers, layers[1:], strict=False)
             for child in lower for parent in upper if rng.random() < 0.7]
    return edges, "L0/g0"


def enumerated(edges: list[tuple[str, str, float]], root: str, sources: set[str]) -> list[tuple[float, tuple]]:
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(edges)
    out = []
    for source in sources:
        if source in graph and root in graph and source != root:
            for path in nx.all_simple_paths(graph, source, root):
                out.append((math.prod(abs(graph[u][v]["weight"]) for u, v in zip(path, path[1:], strict=False)),
                            tuple(path)))
    return sorted(out, key=lambda p: (-p[0], p[1]))


@pytest.mark.parametrize("seed", range(40))
def test_best_paths_are_the_top_of_every_path(seed: int) -> None:
    edges, root = layered_dag(seed)
    groups = sorted({g for e in edges for g in e[:2]} - {root})
    rng = random.Random(seed)
    sources = set(rng.sample(groups, rng.randint(1, len(groups)))) if groups else set()
    every = enumerated(edges, root, sources)
    for limit in (1, 2, 5, len(every), len(every) + 3):
        got = best_paths(edges, root, sources, limit)
        assert [(s, g) for s, g, _ in got] == every[:limit]
        for _, groups_, weights in got:
            assert len(weights) == len(groups_) - 1
            assert all((a, b, w) in edges for a, b, w in zip(groups_, groups_[1:], weights, strict=False))


def test_rows_keep_the_sign_and_the_log_strength() -> None:
    edges = [["a", "b", -0.5], ["b", "root", 0.25], ["a", "root", 0.1]]
    rows = bias_path_rows([{"run_id": "r", "root": "root", "sources": ["a"], "max_paths": 5, "edges": edges}])
    assert [r["groups"] for r in rows] == [["a", "b", "root"], ["a", "root"]]
    assert rows[0]["product"] == -0.125 and rows[0]["strength"] == 0.125 and rows[0]["hops"] == 2
    assert rows[0]["log_strength"] == pytest.approx(math.log(0.5) + math.log(0.25))
    assert bias_path_rows([]) == [] and best_paths(edges, "root", ["a"], 0) == []
