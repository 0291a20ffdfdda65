"""Reach the graph store: Neo4j when NEO4J_URI is set, else the embedded ArcadeDB server, both over Bolt.

The same neo4j driver code serves both. Credentials come from the environment (Neo4j) or the embedded
server's 0600 password file; a password never appears in a log line or an exception message.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import neo4j
import neo4j.exceptions

from neurflow_graph.errors import ConfigError, StoreError, StoreUnavailable
from neurflow_graph.store import admin, server
from neurflow_graph.store.filelock import exclusive
from neurflow_graph.store.paths import layout
from neurflow_graph.store.queries import run_cypher
from neurflow_graph.store.schema import check_schema_version

NEO4J_URI_ENV = "NEO4J_URI"
NEO4J_USER_ENV = "NEO4J_USER"
NEO4J_PASSWORD_ENV = "NEO4J_PASSWORD"
NEO4J_DATABASE_ENV = "NEO4J_DATABASE"
DATABASE_ENV = "NEURFLOW_GRAPH_DATABASE"
STORE_ENV = (NEO4J_URI_ENV, NEO4J_USER_ENV, NEO4J_PASSWORD_ENV, NEO4J_DATABASE_ENV, DATABASE_ENV)
"""Every environment variable that points the commands at a store (tests clear them to use their own server)."""
DEFAULT_DATABASE = "neurflow"
DEFAULT_NEO4J_DATABASE = "neo4j"
WAITING = "waiting for another writer"
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


@dataclass(frozen=True)
class Connection:
    """A driver and the database to use on it; close it (or use `with`) when done."""

    driver: neo4j.Driver
    database: str
    uri: str
    embedded: bool
    data_dir: Path | None = None
    user: str = server.ROOT_USER

    def browser_help(self) -> str:
        """How to open this store in Neo4j Browser or Desktop (URL, user, where the password is, database)."""
        password_file = layout(self.data_dir).password_file if self.embedded and self.data_dir else None
        return browser_help(self.uri, self.user, self.database, password_file)

    @property
    def writer_lock_file(self) -> Path | None:
        """File locked while writing to the embedded store (one writer across processes), else None."""
        return None if self.data_dir is None else layout(self.data_dir).writer_lock_file

    def writing(self) -> contextlib.AbstractContextManager[object]:
        """Hold the embedded store's cross-process writer lock for a block of writes (Neo4j: nothing).

        Every write of every command goes through it; a writer that must wait says so once on stderr.
        """
        lock = self.writer_lock_file
        return exclusive(lock, waiting=WAITING) if lock is not None else contextlib.nullcontext()

    def run(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run query file `cypher/<name>.cypher` on this connection (see queries.run_cypher)."""
        return run_cypher(self.driver, self.database, name, **params)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


STYLE_FILE = Path(__file__).resolve().parents[2] / "docker" / "style.grass"
"""Neo4j Browser's style for the graph's labels (colours, captions); in a source checkout."""


def browser_help(uri: str, user: str, database: str, password_file: Path | None) -> str:
    """Two lines: how to connect Neo4j Browser or Desktop to the store, and how to load the project's style.

    `password_file`: the embedded server's; None for Neo4j, whose password is in `$NEO4J_PASSWORD`.
    """
    style = STYLE_FILE if STYLE_FILE.is_file() else "docker/style.grass (in the source repository)"
    where = (f"${NEO4J_PASSWORD_ENV}" if password_file is None
             else f"in {password_file} (`neurflow-graph db credentials --show-password`)")
    return (
        f"look at it in Neo4j Browser or Desktop: connect URL {uri}, user {user}, password {where}, "
        f"database {database} (`:use {database}`)\n"
        f"  style: run `:style` in Browser and drop {style} onto it (README: Look at it in Neo4j Browser)"
    )


def connect(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    database: str | None = None,
    start: bool = True,
    check_schema: bool = True,
) -> Connection:
    """Connect to Neo4j (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE) or to the embedded store.

    Embedded: the server of `data_dir` is started unless running (`start=False` refuses instead), and
    `database` (default `$NEURFLOW_GRAPH_DATABASE` or `neurflow`) is created if missing. With
    `check_schema` a store written by an incompatible release raises SchemaVersionError.
    """
    uri = os.environ.get(NEO4J_URI_ENV)
    if uri:
        conn = _connect_neo4j(uri, database)
    else:
        conn = _connect_embedded(data_dir, database, start)
    if check_schema:
        try:
            check_schema_version(conn.driver, conn.database)
        except StoreError as exc:
            conn.close()
            if _is_missing_database(exc):
                where = f"set {NEO4J_DATABASE_ENV} to one that exists" if not conn.embedded else "check its name"
                raise StoreError(f"database {conn.database!r} does not exist at {conn.uri}; {where}") from None
            raise
    return conn


def _connect_neo4j(uri: str, database: str | None) -> Connection:
    user = os.environ.get(NEO4J_USER_ENV, "neo4j")
    password = os.environ.get(NEO4J_PASSWORD_ENV, "")
    database = database or os.environ.get(NEO4J_DATABASE_ENV) or DEFAULT_NEO4J_DATABASE
    driver = _open_driver(
        uri,
        user,
        password,
        auth_hint=f"check {NEO4J_USER_ENV} and {NEO4J_PASSWORD_ENV}",
        down_hint=f"start Neo4j (see docker/README.md) or unset {NEO4J_URI_ENV} to use the embedded store",
    )
    try:
        check_database_exists(driver, database, uri)
    except StoreError:
        driver.close()
        raise
    return Connection(driver, database, uri, embedded=False, user=user)


def check_database_exists(driver: neo4j.Driver, database: str, uri: str) -> None:
    """Refuse a database the server does not hold, naming those it does (SHOW DATABASES, which Neo4j 5 and
    ArcadeDB answer; a server that refuses it, e.g. for lack of privileges, is not checked here)."""
    try:
        rows = run_cypher(driver, "system", "list_databases")
    except StoreError:
        return
    names = [row["name"] for row in rows]
    known = {str(n).lower() for row in rows for n in [row["name"], *(row.get("aliases") or [])]}
    if database.lower() not in known:  # Neo4j's names and aliases are case-insensitive
        held = ", ".join(repr(n) for n in names if n != "system") or "none but 'system'"
        raise StoreError(
            f"database {database!r} does not exist at {uri} (it holds {held}); set {NEO4J_DATABASE_ENV} to one of them"
        )


def embedded_database_name(database: str | None = None) -> str:
    """The embedded store's database: `database`, else `$NEURFLOW_GRAPH_DATABASE`, else 'neurflow' (checked)."""
    return admin.check_database_name(database or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE)


def _connect_embedded(data_dir: str | os.PathLike[str] | None, database: str | None, start: bool) -> Connection:
    database = embedded_database_name(database)
    if start:
        info = server.start(data_dir)
    else:
        found = server.status(data_dir)
        if found.state != "running" or found.info is None:
            raise StoreUnavailable(f"{found.message}; run `neurflow-graph db start`")
        info = found.info
    password = server.read_password(data_dir)
    admin.ensure_database(info, password, database)
    driver = _open_driver(
        info.bolt_uri,
        server.ROOT_USER,
        password,
        auth_hint=f"the password in {info.password_file} does not match the store's root user",
        down_hint="run `neurflow-graph db status` and `neurflow-graph db start`",
    )
    return Connection(driver, database, info.bolt_uri, embedded=True, data_dir=layout(data_dir).root)


def _open_driver(uri: str, user: str, password: str, *, auth_hint: str, down_hint: str) -> neo4j.Driver:
    bad_uri = ConfigError(f"{uri!r} is not a Bolt URI; use bolt://HOST:7687 or neo4j://HOST:7687")
    if urlsplit(uri).scheme not in BOLT_SCHEMES:
        raise bad_uri
    try:
        driver = neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=10.0)
    except (neo4j.exceptions.ConfigurationError, ValueError):
        raise bad_uri from None
    try:
        driver.verify_connectivity()
    except neo4j.exceptions.AuthError:
        driver.close()
        raise StoreError(f"the graph server at {uri} refused the credentials of user {user!r}; {auth_hint}") from None
    except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.DriverError, OSError):
        driver.close()
        raise StoreUnavailable(f"no graph server answers at {uri}; {down_hint}") from None
    return driver


def _is_missing_database(exc: StoreError) -> bool:
    cause = exc.__cause__
    code = getattr(cause, "code", "") or ""
    return "DatabaseNotFound" in code
