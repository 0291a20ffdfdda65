"""Fixtures for the store tests: a real embedded ArcadeDB server and small bundles shaped like docs/artifacts.md."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow_graph.store import connect, server
from neurflow_graph.store.connection import Connection

# -- bundles ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundle_dir(digits_bundle_dir: Path) -> Path:
    """A real run bundle: the digits model's circuit of digit 3 (see tests/conftest.py)."""
    return digits_bundle_dir


# -- a real Neo4j 5 (where a Docker engine runs) -------------------------------------------------------

NEO4J_IMAGE = "neo4j:5-community"


@pytest.fixture(scope="session")
def neo4j_env() -> Iterator[dict[str, str]]:
    """NEO4J_* settings of one throw-away Neo4j 5 container per session; skipped, with the reason, without Docker."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine to run Neo4j in
        reason = f"no Docker engine to run {NEO4J_IMAGE} in ({type(exc).__name__}: {str(exc)[:120]})"
        print(f"skipping Neo4j tests: {reason}")
        pytest.skip(reason)
    import secrets

    from testcontainers.community.neo4j import Neo4jContainer

    password = secrets.token_urlsafe(16)
    with Neo4jContainer(NEO4J_IMAGE, password=password, username="neo4j") as container:
        yield {"NEO4J_URI": container.get_connection_url(), "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": password,
               "NEO4J_DATABASE": "neo4j"}


# -- the embedded server ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Data dir of a real ArcadeDB server started from the wheel for this test session (stopped at the end)."""
    root = tmp_path_factory.mktemp("store")
    server.start(root)
    try:
        yield root
    finally:
        server.stop(root)


_names = itertools.count()


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    """A fresh database name per test, so tests do not see each other's graphs."""
    stem = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:40]
    return f"t{next(_names)}_{stem}"


@pytest.fixture
def conn(data_dir: Path, database_name: str) -> Iterator[Connection]:
    """A connection to a fresh database on the session's embedded server."""
    with connect(data_dir, database=database_name) as connection:
        yield connection
