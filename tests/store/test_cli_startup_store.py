"""`query` and `show` against a real stored run import neither torch nor scikit-learn (a fresh interpreter each)."""

from __future__ import annotations

import os
from pathlib import Path

from neurflow_graph.store import write_run_graph
from neurflow_graph.store.connection import Connection


def test_query_and_show_of_a_stored_run_import_no_torch(conn: Connection, data_dir: Path, digits_bundle_dir: Path,
                                                        tmp_path: Path, command_imports) -> None:
    write_run_graph(conn.driver, conn.database, digits_bundle_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    store = ["--data-dir", str(data_dir), "--database", conn.database]
    done, loaded = command_imports("query", "circuit_groups", "-p", "class_id=digits/3", *store, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "conv3/g0" in done.stdout and loaded == []
    page = tmp_path / "c.html"
    done, loaded = command_imports("show", "3", "--out", str(page), *store, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert page.is_file() and "circuit of digits/3" in done.stdout and loaded == []
    done, loaded = command_imports("db", "status", "--data-dir", str(data_dir), env=env)
    assert done.returncode == 0 and "ArcadeDB server (pid" in done.stdout and loaded == []
