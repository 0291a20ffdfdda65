"""The read-only query library: which `cypher/` files a person may run, their defaults, one choke point.

Every query lives once, in `cypher/<name>.cypher`; a header line `// Defaults: $run_id = null, $limit = 20`
declares the parameters a caller may leave out (values in JSON). `run_query` fills those defaults and runs
the file through the store's single `run(name, **params)`.
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
_DEFAULT_ITEM = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$")


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
    names = read_queries()
    if name not in names:
        what = "writes to the store" if name in queries.available() else "is not a query"
        raise QueryError(f"{name!r} {what}; available queries: {', '.join(names)}")
    query = queries.load(name)
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
    reads) is finished here, so the CLI and the helpers give the same answer.
    """
    rows = conn.run(name, **with_defaults(name, params))
    finish = _COMPUTED.get(name)
    return finish(rows) if finish is not None else rows


def _bias_paths(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from neurflow_graph.query.paths import bias_path_rows

    return bias_path_rows(rows)


_COMPUTED = {"bias_paths": _bias_paths}


def _defaults(query: queries.Query) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in _DEFAULTS.findall(query.header):
        for item in (part.strip() for part in line.split(",")):
            match = _DEFAULT_ITEM.match(item)
            if not match:
                raise QueryError(f"{query.path.name}: bad Defaults item {item!r}; write `$name = json-value`")
            key, text = match.groups()
            try:
                found[key] = json.loads(text)
            except json.JSONDecodeError:
                raise QueryError(f"{query.path.name}: default of ${key} is not a JSON value: {text!r}") from None
            if key not in query.parameters:
                raise QueryError(f"{query.path.name}: Defaults names ${key}, which the query does not use")
    return found
