"""Cypher files loaded by name from `cypher/`, checked against their parameters, run through one choke point.

Every query lives once, in `cypher/<name>.cypher`, opening with a `//` header comment that documents
it (what it answers, its parameters, an example) and declares whether it writes (`// Writes: true` or
`// Writes: false`). Values travel only as `$params`; a parameter the file uses but the caller did not
pass, or one passed but unused, fails with the file name.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import neo4j.exceptions
import pyarrow as pa

from neurflow_graph.errors import QueryError, StoreError, StoreUnavailable

CYPHER_DIR_ENV = "NEURFLOW_GRAPH_CYPHER_DIR"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_WRITE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DROP)\b", re.IGNORECASE)
_WRITES_LINE = re.compile(r"^Writes:\s*(\S*)\s*$", re.MULTILINE)
_ROW_LAYOUT = re.compile(r"^Row:\s*\[([^\]]*)\]", re.MULTILINE)


def cypher_dir() -> Path:
    """The folder of `.cypher` files: `$NEURFLOW_GRAPH_CYPHER_DIR`, else the package's `cypher/`.

    In a checkout `neurflow_graph/cypher` links to the repository's `cypher/`; wheels carry the files.
    """
    env = os.environ.get(CYPHER_DIR_ENV)
    return Path(env) if env else _PACKAGE_CYPHER


_PACKAGE_CYPHER = Path(__file__).resolve().parents[1] / "cypher"


@dataclass(frozen=True)
class Query:
    """One query file: its statements (comments removed), the `$parameters` they use, and its header."""

    name: str
    path: Path
    statements: tuple[str, ...]
    statement_parameters: tuple[frozenset[str], ...]
    parameters: frozenset[str]
    writes: bool
    header: str
    row_columns: tuple[str, ...] = ()
    """What each position of a `$rows` row holds, from the header's `// Row: [id, name, …]` (or empty)."""

    def check(self, params: dict[str, Any]) -> None:
        """Fail with the file name when `params` lacks a parameter the file uses, or has an unused one."""
        missing = sorted(self.parameters - params.keys())
        unused = sorted(params.keys() - self.parameters)
        problems = []
        if missing:
            problems.append("missing parameter(s) " + ", ".join(f"${p}" for p in missing))
        if unused:
            problems.append("unused parameter(s) " + ", ".join(f"${p}" for p in unused))
        if problems:
            raise QueryError(f"{self.path.name}: {'; '.join(problems)}")

    def row_lists(self, rows: pa.Table | list[dict[str, Any]]) -> list[list[Any]]:
        """Rows (a table, or dicts) as the positional lists the file reads (`row[0]`, …); lists pack and parse
        faster than maps."""
        columns = self.row_columns
        if not columns:
            raise QueryError(f"{self.path.name}: no '// Row: [...]' header line declares the row layout")
        if isinstance(rows, pa.Table):
            missing = [c for c in columns if c not in rows.column_names]
            if missing:
                raise QueryError(f"{self.path.name}: the rows lack column {missing[0]!r}")
            return [list(row) for row in zip(*(rows.column(c).to_pylist() for c in columns), strict=True)]
        try:
            return [[row[c] for c in columns] for row in rows]
        except KeyError as exc:
            raise QueryError(f"{self.path.name}: a row lacks column {exc.args[0]!r}") from None


def load(name: str) -> Query:
    """Load `cypher/<name>.cypher`; an unknown name or a file without a header comment is a QueryError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise QueryError(f"query name {name!r} is not a lowercase file stem like 'write_neurons'")
    return _load(cypher_dir(), name)


@functools.cache
def _load(folder: Path, name: str) -> Query:
    path = folder / f"{name}.cypher"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryError(f"unknown query {name!r}: no file {path}") from None
    header = _header(text)
    if not header:
        raise QueryError(f"{path.name}: the file must open with a // header comment documenting the query")
    code, bare = _strip(text)
    pieces = [(c.strip(), frozenset(_PARAM.findall(b))) for c, b in _split(code, bare) if c.strip()]
    if not pieces:
        raise QueryError(f"{path.name}: no Cypher statement in the file")
    return Query(
        name=name,
        path=path,
        statements=tuple(c for c, _ in pieces),
        statement_parameters=tuple(p for _, p in pieces),
        parameters=frozenset(_PARAM.findall(bare)),
        writes=_declared_writes(path, header, bare),
        header=header,
        row_columns=_row_columns(path, header),
    )


def available() -> list[str]:
    """The names of every query file in `cypher/`."""
    return sorted(p.stem for p in cypher_dir().glob("*.cypher"))


def run_cypher(driver: neo4j.Driver, database: str, name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run query file `name` with `params` in one managed transaction per statement; rows as dicts."""
    return [_row(record) for record in execute(driver, database, name, params).records]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _row(record: neo4j.Record) -> dict[str, Any]:
    """`record.data()`, without its per-value conversion when every value is a scalar or a list of them (the
    conversion cost more than the query for a circuit's edges, read as one row of ~800 lists)."""
    values = record.values()
    return dict(zip(record.keys(), values, strict=True)) if all(map(_plain, values)) else record.data()


def _plain(value: Any) -> bool:
    kind = type(value)
    return kind in _SCALARS or (kind is list and all(map(_plain, value)))


def run_table(driver: neo4j.Driver, database: str, name: str, /, **params: Any) -> pa.Table:
    """Like `run`, returning the rows as a pyarrow Table (for bulk reads)."""
    return pa.Table.from_pylist(run_cypher(driver, database, name, **params))


def execute(
    driver: neo4j.Driver, database: str, name: str, params: dict[str, Any], *, retries_at_once: int = 0
) -> neo4j.EagerResult:
    """The choke point: check parameters, run each statement, re-raise driver errors as StoreError.

    Returns the result of the last statement. Errors name the query and the parameter *names*.
    `retries_at_once`: a statement whose transaction fails on a retryable conflict is tried again at once up
    to that many times before the driver's own retries, which wait a second or more between tries.
    """
    query = load(name)
    query.check(params)
    routing = neo4j.RoutingControl.WRITE if query.writes else neo4j.RoutingControl.READ
    results = []
    for statement, names in zip(query.statements, query.statement_parameters, strict=True):
        used = {k: _Terse(params[k]) if type(params[k]) is list else params[k] for k in names}
        try:
            result = _retried_at_once(driver, database, statement, used, retries_at_once)
            if result is None:
                result = driver.execute_query(statement, used, database_=database, routing_=routing)
            results.append(result)
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired) as exc:
            raise StoreUnavailable(f"{_where(name, params)}: the graph server stopped answering") from exc
        except neo4j.exceptions.AuthError as exc:
            raise StoreError(f"{_where(name, params)}: the graph server refused the credentials") from exc
        except neo4j.exceptions.Neo4jError as exc:
            raise StoreError(f"{_where(name, params)} failed: {_one_line(exc.message or str(exc))}") from exc
        except neo4j.exceptions.DriverError as exc:
            raise StoreError(f"{_where(name, params)} failed: {_one_line(str(exc))}") from exc
    return results[-1]


def _retried_at_once(
    driver: neo4j.Driver, database: str, statement: str, params: dict[str, Any], tries: int
) -> neo4j.EagerResult | None:
    """Run `statement` in up to `tries` write transactions while each fails on a retryable conflict (ArcadeDB:
    two writers' records on one page); None when every try did, or none was asked for."""
    if tries < 1:
        return None
    with driver.session(database=database) as session:
        for _ in range(tries):
            try:
                with session.begin_transaction() as tx:
                    result = tx.run(statement, params).to_eager_result()
                    tx.commit()
                return result
            except neo4j.exceptions.Neo4jError as exc:
                if not exc.is_retryable():
                    raise
    return None


class _Terse(list):
    """A list parameter whose repr is its length: the neo4j driver reprs every RUN's parameters for a debug
    log line even when debug logging is off, which cost 0.8 s per 400k-element ingest (and would log data)."""

    def __repr__(self) -> str:
        return f"<list of {len(self)}>"


def _declared_writes(path: Path, header: str, bare: str) -> bool:
    """The header's `Writes: true|false` line; a file declaring false whose code writes is refused."""
    found = _WRITES_LINE.findall(header)
    if len(found) != 1 or found[0] not in ("true", "false"):
        raise QueryError(f"{path.name}: the header must hold one line '// Writes: true' or '// Writes: false'")
    writes = found[0] == "true"
    clause = _WRITE.search(bare)
    if not writes and clause:
        raise QueryError(f"{path.name}: declares 'Writes: false' but holds {clause.group(1).upper()}; "
                         "declare 'Writes: true'")
    return writes


def _row_columns(path: Path, header: str) -> tuple[str, ...]:
    match = _ROW_LAYOUT.search(header)
    if match is None:
        return ()
    columns = tuple(c.strip() for c in match.group(1).split(","))
    if not all(c.isidentifier() for c in columns) or len(set(columns)) != len(columns):
        raise QueryError(f"{path.name}: the Row: line must list distinct names, got [{match.group(1)}]")
    return columns


def _where(name: str, params: dict[str, Any]) -> str:
    names = ", ".join(sorted(params)) or "none"
    return f"query {name!r} (parameters: {names})"


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            lines.append(stripped[2:].strip())
        elif stripped or lines:
            break
    return "\n".join(lines).strip()


def _strip(text: str) -> tuple[str, str]:
    """Remove comments: returns (code with string literals kept, code with string literals blanked)."""
    code: list[str] = []
    bare: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            code.append(" ")
            bare.append(" ")
        elif ch in "'\"`":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            literal = text[i : j + 1]
            code.append(literal)
            bare.append(literal if ch == "`" else " " * len(literal))
            i = j + 1
        else:
            code.append(ch)
            bare.append(ch)
            i += 1
    return "".join(code), "".join(bare)


def _split(code: str, bare: str) -> list[tuple[str, str]]:
    """Split on the `;` that separate statements (never one inside a string literal)."""
    parts, start = [], 0
    for i, ch in enumerate(bare):
        if ch == ";":
            parts.append((code[start:i], bare[start:i]))
            start = i + 1
    parts.append((code[start:], bare[start:]))
    return parts
