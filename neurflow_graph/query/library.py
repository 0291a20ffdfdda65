"""The read-only query library: which `cypher/` files a person may run, their defaults, one choke point.

Every query lives once, in `cypher/<name>.cypher`; a header line `// Defaults: $run_id = null, $limit = 20`
declares the parameters a caller may leave out, each value one JSON value (a list or an object may hold commas).
`run_query` fills those defaults and runs the file through the store's single `run(name, **params)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from neurflow_graph.errors import QueryError
from neurflow_graph.store import queries

_DEFAULTS = re.compile(r"^Defaults:\s*(.*)$", re.MULTILINE)
_DEFAULT_NAME = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_DEFAULT_END = re.compile(r"\s*(,|$)")


class Runner(Protocol):
    """Anything that runs a query file by name: a `neurflow_graph.store.Connection`."""

    def run(self, name: str, /, **params: Any) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class QueryInfo:
    """One read query: its name, the first line of its header, its parameters and their defaults."""

    name: str
    summary: str
    header: str
    parameters: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> tuple[str, ...]:
        """Parameters without a default: a caller must pass them."""
        return tuple(p for p in self.parameters if p not in self.defaults)

    def describe_parameters(self) -> str:
        """`class_id, run_id (default null), …` for messages and listings."""
        parts = [p if p not in self.defaults else f"{p} (default {json.dumps(self.defaults[p])})"
                 for p in self.parameters]
        return ", ".join(parts) or "none"


def read_queries() -> list[str]:
    """Names of the query files that only read the store (what `neurflow-graph query` may run)."""
    return [name for name in queries.available() if not queries.load(name).writes]


def query_info(name: str) -> QueryInfo:
    """The read query `name`; an unknown name (or a write query) is a QueryError listing the available ones."""
    query = queries.load(name) if name in queries.available() else None
    if query is None or query.writes:  # the whole listing only for the message: loading every file costs a call
        what = "is not a query" if query is None else "writes to the store"
        raise QueryError(f"{name!r} {what}; available queries: {', '.join(read_queries())}")
    return QueryInfo(
        name=name,
        summary=query.header.splitlines()[0],
        header=query.header,
        parameters=tuple(sorted(query.parameters)),
        defaults=_defaults(query),
    )


def with_defaults(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` completed with the file's defaults; a missing required or unknown parameter is a QueryError."""
    info = query_info(name)
    unknown = sorted(set(params) - set(info.parameters))
    if unknown:
        raise QueryError(f"query {name!r} has no parameter {', '.join(unknown)}; "
                         f"its parameters: {info.describe_parameters()}")
    missing = [p for p in info.required if p not in params]
    if missing:
        raise QueryError(f"query {name!r} needs parameter {', '.join(missing)} (--param {missing[0]}=…); "
                         f"its parameters: {info.describe_parameters()}")
    return {**info.defaults, **params}


def run_query(conn: Runner, name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run read query `name` with its defaults filled in; rows as dicts (the helpers' one choke point).

    A query whose answer is computed from its file's rows (`bias_paths`: a path search over the edges it
    reads; `circuit_edges`: the ranking of each parent's inputs) is finished here, so the CLI and the helpers
    give the same answer.
    """
    full = with_defaults(name, params)
    first = _ANSWERED_FIRST.get(name)
    if first is not None and (answer := first(conn, full)) is not None:
        return answer
    rows = conn.run(name, **full)
    finish = _COMPUTED.get(name)
    return finish(conn, full, rows) if finish is not None else rows


def _bias_paths(conn: Runner, params: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from neurflow_graph.query.paths import bias_path_rows

    return bias_path_rows(rows)


_EDGE_FIELDS = ("child", "parent", "child_layer", "parent_layer", "child_layer_index", "parent_layer_index", "weight",
                "n_edges", "relation")


def _circuit_edges(conn: Runner, params: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per FEEDS edge of the run, each parent's inputs ranked by |weight| (ties by child id), top_n kept."""
    out: list[dict[str, Any]] = []
    for row in rows:
        inputs: dict[str, list[dict[str, Any]]] = {}
        for edge in row["edges"]:
            item = dict(zip(_EDGE_FIELDS, edge, strict=True))
            inputs.setdefault(item["parent"], []).append(item)
        for ranked in inputs.values():
            ranked.sort(key=lambda e: (-abs(e["weight"]), e["child"]))
            top = ranked if row["top_n"] is None else ranked[: max(int(row["top_n"]), 0)]
            out.extend({"run_id": row["run_id"], **e, "rank": rank} for rank, e in enumerate(top))
    out.sort(key=lambda e: (e["parent_layer_index"], e["parent"], e["rank"]))
    return [{k: e[k] for k in ("run_id", *_EDGE_FIELDS[:-1], "rank", "relation")} for e in out]


def _shared_groups(conn: Runner, params: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The top pairs of the file's row, ranked here. The row holds every pair ranking above its `bound`; while
    fewer than the limit, read again with 4x the candidate groups (bound -1: every group was read)."""
    while rows:
        (row,) = rows
        limit = max(int(row["max_pairs"]), 0)
        ranked = _ranked_pairs(row)
        if row["bound"] < 0 or len(ranked) >= limit:
            return ranked[:limit]
        params = {**params, "candidates": int(row["candidates"]) * 4}
        rows = conn.run("shared_groups", **params)
    return []


def _ranked_pairs(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's pairs, each once (group_a in the run of the smaller id), by Jaccard, shared, then group ids."""
    classes = dict(map(tuple, row["classes"]))
    return [_named(p, classes) for p in _pairs(row["pairs"])]


def _pairs(rows: list[list[Any]]) -> list[dict[str, Any]]:
    """Pairs as read ([x, y, run_x, run_y, layer, jaccard, shared, n_x, n_y, neurons]), each once, in answer order;
    `class_a`/`class_b` hold the runs until `_named` names their classes."""
    from neurflow_graph.store.shares import ordered_pair, pair_rank

    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for x, y, run_x, run_y, layer, jaccard, shared, n_x, n_y, neurons in rows:
        of = {x: (run_x, n_x), y: (run_y, n_y)}
        a, b = ordered_pair(x, y)
        pairs[a, b] = {"layer": layer, "class_a": of[a][0], "group_a": a, "class_b": of[b][0],
                       "group_b": b, "jaccard": jaccard, "shared": shared, "n_a": of[a][1], "n_b": of[b][1],
                       "shared_neurons": sorted(neurons or [])}
    return sorted(pairs.values(), key=pair_rank)


def _named(pair: dict[str, Any], classes: Mapping[str, str]) -> dict[str, Any]:
    return {**pair, "class_a": classes[pair["class_a"]], "class_b": classes[pair["class_b"]]}


def _class_shared_groups(conn: Runner, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The top pairs of one class: its latest groups' SHARES (`shares_of_class`), ranked here; the classes of the
    pairs kept are looked up last (`run_classes`)."""
    (row,) = conn.run("shares_of_class", class_id=params["class_id"], min_jaccard=params["min_jaccard"],
                      layer=params["layer"])
    top = _pairs(row["pairs"])[:max(int(params["limit"]), 0)]
    runs = sorted({p[k] for p in top for k in ("class_a", "class_b")})
    classes = {r["run_id"]: r["class_id"] for r in conn.run("run_classes", runs=runs)} if runs else {}
    return [_named(p, classes) for p in top]


def _top_shared_groups(conn: Runner, params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The top pairs over the store (no class) from the layers' top lists (`shares_top`), or None when they cannot
    tell them exactly (then shared_groups.cypher answers).

    Each list holds every pair of its layer ranking before its last entry (all of them unless `dropped`), so the
    pairs ranking before every dropped list's last entry are every pair of the store ranking there; of those, the
    ones whose two groups are latest (`shares_top_groups`) are the answer, best first.
    """
    from neurflow_graph.store.shares import pair_rank

    if params["class_id"] is not None:
        return _class_shared_groups(conn, params)
    limit = max(int(params["limit"]), 0)
    lists = conn.run("shares_top", layer=params["layer"])
    ends, entries = [], []
    for row in lists:
        pairs = [{"layer": row["layer"], "group_a": a, "group_b": b, "jaccard": j, "shared": k}
                 for a, b, j, k in zip(row["a"], row["b"], row["jaccard"], row["shared"], strict=True)]
        if row["dropped"] and pairs:
            ends.append(pair_rank(pairs[-1]))
        entries.extend(p for p in pairs if p["jaccard"] >= params["min_jaccard"])
    certain = sorted((p for p in entries if all(pair_rank(p) <= end for end in ends)), key=pair_rank)
    answer: list[dict[str, Any]] = []
    for start in range(0, len(certain), 2 * limit or 1):
        if len(answer) >= limit:
            break
        batch = certain[start:start + 2 * limit]
        groups = {g["id"]: g for g in conn.run("shares_top_groups",
                                               groups=sorted({g for p in batch for g in (p["group_a"], p["group_b"])}))}
        for p in batch:
            a, b = groups.get(p["group_a"]), groups.get(p["group_b"])
            if a is not None and b is not None:
                answer.append({"layer": p["layer"], "class_a": a["class_id"], "group_a": a["id"],
                               "class_b": b["class_id"], "group_b": b["id"], "jaccard": p["jaccard"],
                               "shared": p["shared"], "n_a": a["n_neurons"], "n_b": b["n_neurons"],
                               "shared_neurons": sorted(set(a["members"]) & set(b["members"]))})
    if len(answer) >= limit or not ends:
        return answer[:limit]
    return None


_COMPUTED = {"bias_paths": _bias_paths, "circuit_edges": _circuit_edges, "shared_groups": _shared_groups}
_ANSWERED_FIRST = {"shared_groups": _top_shared_groups}


def _defaults(query: queries.Query) -> dict[str, Any]:
    """The header's `Defaults:` items, `$name = json-value` separated by commas, each value parsed as JSON."""
    found: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    for line in _DEFAULTS.findall(query.header):
        pos = 0
        while pos < len(line):
            name = _DEFAULT_NAME.match(line, pos)
            if not name:
                raise QueryError(f"{query.path.name}: bad Defaults item {line[pos:].strip()!r}; "
                                 "write `$name = json-value`")
            key = name.group(1)
            try:
                found[key], end = decoder.raw_decode(line, name.end())
            except json.JSONDecodeError:
                raise QueryError(f"{query.path.name}: default of ${key} is not a JSON value: "
                                 f"{line[name.end():].strip()!r}") from None
            after = _DEFAULT_END.match(line, end)
            if not after:
                raise QueryError(f"{query.path.name}: default of ${key} is not one JSON value: "
                                 f"{line[name.end():].strip()!r}")
            pos = after.end() if after.group(1) else len(line)
            if key not in query.parameters:
                raise QueryError(f"{query.path.name}: Defaults names ${key}, which the query does not use")
    return found
