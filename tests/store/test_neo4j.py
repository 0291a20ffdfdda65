"""The same schema, queries and writer against a real Neo4j 5 (testcontainers); skipped without a Docker engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow_graph.store import connect, ensure_schema, write_run_graph
from neurflow_graph.store.connection import Connection


@pytest.fixture
def neo4j_conn(neo4j_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Connection]:
    for key, value in neo4j_env.items():
        monkeypatch.setenv(key, value)
    with connect() as conn:
        conn.driver.execute_query("MATCH (n) DETACH DELETE n", database_=conn.database)
        yield conn


def test_schema_on_neo4j(neo4j_conn: Connection) -> None:
    ensure_schema(neo4j_conn.driver, neo4j_conn.database)
    names = {row["name"] for row in neo4j_conn.run("schema_constraints")}
    assert {"neuron_id", "semantic_group_id", "neuron_group_id", "run_id"} <= names


def test_write_bundle_on_neo4j(neo4j_conn: Connection, bundle_dir: Path) -> None:
    report = write_run_graph(neo4j_conn.driver, neo4j_conn.database, bundle_dir)
    (counts,) = neo4j_conn.run("run_counts", run_id=report.run_id)
    assert counts["complete"] is True
    assert counts["hyperedges"] == report.counts["n_hyperedges"]
    before = (neo4j_conn.run("node_counts"), neo4j_conn.run("relationship_counts"))
    write_run_graph(neo4j_conn.driver, neo4j_conn.database, bundle_dir)
    assert (neo4j_conn.run("node_counts"), neo4j_conn.run("relationship_counts")) == before
    assert neo4j_conn.run("circuit_of_class", class_id="digits/3")
