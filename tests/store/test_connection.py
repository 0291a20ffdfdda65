"""Connecting: embedded server or NEO4J_URI through the same driver code; clear one-line failures, no secrets."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from neurflow_graph.errors import ConfigError, StoreError, StoreUnavailable
from neurflow_graph.store import admin, connect, server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedded_connection_creates_its_database(data_dir: Path, database_name: str) -> None:
    with connect(data_dir, database=database_name) as conn:
        assert conn.embedded and conn.database == database_name
        assert conn.uri == server.status(data_dir).info.bolt_uri
        assert conn.run("list_runs") == []


def test_drop_database_removes_it_and_its_graph(data_dir: Path, database_name: str) -> None:
    with connect(data_dir, database=database_name) as conn:
        conn.driver.execute_query("CREATE (:Probe {id: 1})", database_=database_name)
    info, password = server.start(data_dir), server.read_password(data_dir)
    assert database_name in admin.list_databases(info, password)
    assert admin.drop_database(info, password, database_name) is True
    assert database_name not in admin.list_databases(info, password)
    assert admin.drop_database(info, password, database_name) is False
    with connect(data_dir, database=database_name) as conn:  # created again, empty
        assert conn.driver.execute_query("MATCH (n) RETURN count(n) AS n", database_=database_name).records[0]["n"] == 0


def test_neo4j_uri_reaches_the_same_server_with_the_same_code(
    data_dir: Path, database_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(data_dir, database=database_name):
        pass  # creates the database
    info = server.start(data_dir)
    monkeypatch.setenv("NEO4J_URI", info.bolt_uri)
    monkeypatch.setenv("NEO4J_USER", "root")
    monkeypatch.setenv("NEO4J_PASSWORD", server.read_password(data_dir))
    monkeypatch.setenv("NEO4J_DATABASE", database_name)
    with connect() as conn:
        assert not conn.embedded and conn.database == database_name
        assert conn.run("list_runs") == []


def test_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"bolt://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("NEO4J_URI", uri)
    monkeypatch.setenv("NEO4J_PASSWORD", "irrelevant-secret")
    with pytest.raises(StoreUnavailable) as err:
        connect()
    message = str(err.value)
    assert uri in message and "NEO4J_URI" in message and "\n" not in message
    assert "irrelevant-secret" not in message


def test_wrong_password_is_a_clear_error_without_the_password(
    data_dir: Path, database_name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-secret-4f9c1e"
    info = server.start(data_dir)
    monkeypatch.setenv("NEO4J_URI", info.bolt_uri)
    monkeypatch.setenv("NEO4J_USER", "root")
    monkeypatch.setenv("NEO4J_PASSWORD", secret)
    monkeypatch.setenv("NEO4J_DATABASE", database_name)
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as err:
        connect()
    message = str(err.value)
    assert "refused the credentials of user 'root'" in message and "NEO4J_PASSWORD" in message
    assert secret not in message and secret not in repr(err.value)
    assert err.value.__cause__ is None or secret not in str(err.value.__cause__)
    assert secret not in caplog.text


def test_password_never_logged(data_dir: Path, database_name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        with connect(data_dir, database=database_name) as conn:
            conn.run("list_runs")
    assert server.read_password(data_dir) not in caplog.text


def test_no_embedded_server_without_start(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="db start"):
        connect(tmp_path, start=False)


def test_invalid_database_name(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="database name"):
        connect(data_dir, database="bad name; drop")


def test_bad_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "http://localhost:7474")
    with pytest.raises(ConfigError, match="not a Bolt URI"):
        connect()


@pytest.mark.parametrize("database", [None, "no_such_database"])
def test_a_database_the_server_lacks_is_named_with_those_it_holds(
    data_dir: Path, database_name: str, monkeypatch: pytest.MonkeyPatch, database: str | None
) -> None:
    """NEO4J_URI at a server without the database (here the embedded ArcadeDB, which answers SHOW DATABASES as
    Neo4j does; unset NEO4J_DATABASE means Neo4j's default 'neo4j', which it does not hold)."""
    with connect(data_dir, database=database_name):
        pass  # a database that exists
    info = server.start(data_dir)
    monkeypatch.setenv("NEO4J_URI", info.bolt_uri)
    monkeypatch.setenv("NEO4J_USER", "root")
    monkeypatch.setenv("NEO4J_PASSWORD", server.read_password(data_dir))
    if database is not None:
        monkeypatch.setenv("NEO4J_DATABASE", database)
    missing = database or "neo4j"
    with pytest.raises(StoreError) as err:
        connect()
    message = str(err.value)
    assert f"database {missing!r} does not exist at {info.bolt_uri}" in message and "NEO4J_DATABASE" in message
    assert repr(database_name) in message and "\n" not in message
    from click.testing import CliRunner

    from neurflow_graph.cli.main import main

    result = CliRunner().invoke(main, ["query", "list_runs"])
    assert result.exit_code == 1 and "does not exist" in result.output and "(no rows)" not in result.output
