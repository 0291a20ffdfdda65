"""The strongest group paths up to a class logit (`bias_paths`): an exact k-best search over one run's edges.

A path's strength is the product of |w| over its FEEDS edges. Every factor is >= 0, so the k strongest paths
from a group are among {|w(g, p)| x q : q one of the k strongest paths from parent p}; keeping the best k per
group (dynamic programming over the DAG of groups, child -> parent) is exact whatever the sizes of the
weights, and costs O(edges x k) instead of enumerating every path (up to 10^10 in a dense 11-layer circuit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_Path = tuple[float, tuple[str, ...], tuple[float, ...]]  # (strength, groups source..root, signed weights)


def best_paths(edges: Iterable[tuple[str, str, float]], root: str, sources: Iterable[str], limit: int) -> list[_Path]:
    """The `limit` strongest paths from any of `sources` to `root` over (child, parent, weight) edges.

    Ordered by strength descending, then by the group list (as `ORDER BY strength DESC, groups`).
    """
    if limit <= 0:
        return []
    parents: dict[str, list[tuple[str, float]]] = {}
    for child, parent, weight in edges:
        parents.setdefault(child, []).append((parent, float(weight)))
    best: dict[str, list[_Path]] = {root: [(1.0, (root,), ())]}
    visiting: set[str] = set()

    def order(p: _Path) -> tuple[float, tuple[str, ...]]:
        return (-p[0], p[1])

    def paths_from(group: str) -> list[_Path]:
        if group in best:
            return best[group]
        if group in visiting:  # a cycle cannot occur between layers; never loop on a malformed graph
            return []
        visiting.add(group)
        found = [(abs(w) * strength, (group, *groups), (w, *weights))
                 for parent, w in parents.get(group, ())
                 for strength, groups, weights in paths_from(parent)
                 if group not in groups]
        visiting.discard(group)
        found.sort(key=order)
        best[group] = found[:limit]
        return best[group]

    out = [p for s in dict.fromkeys(sources) if s != root for p in paths_from(s)]
    out.sort(key=order)
    return out[:limit]


def bias_path_rows(edge_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `bias_paths` (one per path, strongest first) from the row of its edge read `bias_paths.cypher`."""
    if not edge_rows:
        return []
    first = edge_rows[0]
    rows = []
    for _, groups, weights in best_paths(map(tuple, first["edges"]), first["root"], first["sources"],
                                         int(first["max_paths"])):
        product = 1.0
        for w in weights:  # left to right, as the reduce() of the Cypher enumeration did
            product *= w
        log_strength = sum(math.log(abs(w)) if w else -math.inf for w in weights)
        rows.append({"run_id": first["run_id"], "source": groups[0], "groups": list(groups), "weights": list(weights),
                     "product": product, "strength": abs(product), "log_strength": log_strength,
                     "hops": len(weights)})
    rows.sort(key=lambda r: (-r["strength"], r["groups"]))
    return rows
