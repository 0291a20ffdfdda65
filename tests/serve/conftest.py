"""Fixtures of the explorer tests: one real embedded store holding real digits circuits (digits 3, 5 and 8 of the
digits CNN, and digit 3 of the digits ViT), and the explorer app over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow_graph.store import connect, server, write_run_graph
from neurflow_graph.store.connection import STORE_ENV, Connection

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install -e '.[serve]'")

DATABASE = "serve"
DIGITS = (3, 5, 8)
INGEST = Path(__file__).resolve().parents[2] / "ingest"
SMALL_VIT = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "3", "--quiet"]


@pytest.fixture(scope="session")
def serve_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ArcadeDB server for the explorer tests (stopped at the end)."""
    root = tmp_path_factory.mktemp("serve-store")
    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_ENV:
            mp.delenv(name, raising=False)
        server.start(root)
        try:
            yield root
        finally:
            server.stop(root)


@pytest.fixture(scope="session")
def vit_ingest_output(serve_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What `neurflow-graph ingest` printed when it computed and stored digit 3 of the digits ViT (a small run)."""
    from click.testing import CliRunner

    from neurflow_graph.cli.main import main

    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_ENV:
            mp.delenv(name, raising=False)
        out = tmp_path_factory.mktemp("vit-bundles")
        result = CliRunner().invoke(main, ["ingest", str(INGEST / "digits-vit.toml"), "--out", str(out),
                                           "--data-dir", str(serve_data_dir), "--database", DATABASE, *SMALL_VIT])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def stored(serve_data_dir: Path, digits_bundle_dirs, vit_ingest_output: str) -> Path:
    """The store filled once: digits 3, 5, 8 (real runs of the digits CNN) and digit 3 of the digits ViT."""
    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_ENV:
            mp.delenv(name, raising=False)
        with connect(serve_data_dir, database=DATABASE) as conn:
            for c in DIGITS:
                write_run_graph(conn.driver, conn.database, digits_bundle_dirs(c))
    return serve_data_dir


@pytest.fixture
def conn(stored: Path) -> Iterator[Connection]:
    with connect(stored, database=DATABASE) as connection:
        yield connection


class ReadOnly:
    """The connection the app gets in the tests: it runs a query file only when the file reads (no write path)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ran: list[str] = []

    def run(self, name: str, /, **params):
        from neurflow_graph.store import queries

        assert not queries.load(name).writes, f"the explorer ran the write query {name}"
        self.ran.append(name)
        return self.conn.run(name, **params)


def app_client(conn: Connection):
    """A Starlette TestClient over the explorer app on `conn` (read-only checked)."""
    from starlette.testclient import TestClient

    from neurflow_graph.serve.app import create_app

    return TestClient(create_app(ReadOnly(conn)), raise_server_exceptions=True)


@pytest.fixture
def client(conn: Connection):
    with app_client(conn) as test_client:
        yield test_client
