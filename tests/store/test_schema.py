"""Schema: constraints and indexes created before any write; a store of another schema version is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neurflow_graph.errors import SchemaVersionError
from neurflow_graph.store import SCHEMA_VERSION, connect, ensure_schema, queries, write_run_graph
from neurflow_graph.store.connection import Connection
from neurflow_graph.store.schema import SCHEMA_KEY, read_schema_version


def _declared(kind: str) -> set[str]:
    text = (queries.cypher_dir() / "schema.cypher").read_text()
    return set(re.findall(rf"CREATE {kind} (\w+) IF NOT EXISTS", text))


def test_schema_creates_every_constraint_and_index(conn: Connection) -> None:
    ensure_schema(conn.driver, conn.database)
    constraints = {row["name"]: row for row in conn.run("schema_constraints")}
    assert _declared("CONSTRAINT") <= constraints.keys()
    assert constraints["neuron_id"]["labels"] == ["Neuron"]
    assert constraints["neuron_id"]["properties"] == ["id"]
    indexes = {row["name"] for row in conn.run("schema_indexes")}
    assert _declared("INDEX") <= indexes
    assert read_schema_version(conn.driver, conn.database) == SCHEMA_VERSION


def test_schema_is_idempotent(conn: Connection) -> None:
    ensure_schema(conn.driver, conn.database)
    before = conn.run("schema_constraints")
    ensure_schema(conn.driver, conn.database)
    assert conn.run("schema_constraints") == before
    assert conn.run("node_counts") == [{"label": "SchemaVersion", "count": 1}]


@pytest.mark.parametrize("other", [SCHEMA_VERSION + 1, SCHEMA_VERSION - 1])
def test_other_schema_version_is_refused(data_dir: Path, database_name: str, bundle_dir: Path, other: int) -> None:
    with connect(data_dir, database=database_name) as conn:
        conn.driver.execute_query(
            "CREATE (:SchemaVersion {id: $key, version: $version})",
            {"key": SCHEMA_KEY, "version": other},
            database_=conn.database,
        )
        with pytest.raises(SchemaVersionError, match=f"schema version {other}") as err:
            write_run_graph(conn.driver, conn.database, bundle_dir)
        assert "\n" not in str(err.value)
        hint = "upgrade neurflow-graph" if other > SCHEMA_VERSION else "new database"
        assert hint in str(err.value)
        assert conn.run("list_runs") == []  # refused before any write
    with pytest.raises(SchemaVersionError):
        connect(data_dir, database=database_name)


@pytest.mark.parametrize("stored", ["abc", "1", 1.5, 1.0, True, None], ids=repr)
def test_a_schema_version_that_is_not_the_integer_is_refused(
    data_dir: Path, database_name: str, bundle_dir: Path, stored: object
) -> None:
    with connect(data_dir, database=database_name, check_schema=False) as conn:
        props = {"id": SCHEMA_KEY} if stored is None else {"id": SCHEMA_KEY, "version": stored}
        conn.driver.execute_query("CREATE (v:SchemaVersion) SET v = $props", {"props": props},
                                  database_=conn.database)
        with pytest.raises(SchemaVersionError, match=rf"records schema version {re.escape(repr(stored))} ") as err:
            write_run_graph(conn.driver, conn.database, bundle_dir)  # a load: refused before any write
        message = str(err.value)
        assert "\n" not in message and f"reads schema version {SCHEMA_VERSION}" in message and "new database" in message
        assert conn.run("list_runs") == []
        (row,) = conn.run("schema_version_read", key=SCHEMA_KEY)
        assert row["present"] and row["version"] == stored  # left as it was (a null stays refused, not filled)
    with pytest.raises(SchemaVersionError):
        connect(data_dir, database=database_name)
