"""A `--force` re-ingest killed with SIGKILL at several points, read all along by another client: the reader gets the
whole complete circuit or, while the rewrite runs and after a kill, no row for the class (docs/schema.md, "Rewriting
a run"), never a partial circuit; writing the bundle again converges to the clean graph."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from neurflow_graph.store import connect, read_bundle_tables, write_run_graph

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from neurflow_graph.store import connect, write_run_graph

    bundle, data_dir, database, stop_after, marker = sys.argv[1:6]
    seen = []

    def hook(query, index):
        seen.append(query)
        if len(seen) == int(stop_after):
            Path(marker).write_text(query)
            time.sleep(600)  # killed here, between two committed batches

    with connect(data_dir, database=database) as conn:
        write_run_graph(conn.driver, conn.database, bundle, batch_size=40, on_batch=hook)
    """
)


def _rows(conn, class_id: str) -> str:
    return json.dumps(sorted(json.dumps(r, sort_keys=True) for r in conn.run("circuit_of_class", class_id=class_id)))


def _graph(conn) -> tuple[list[dict], list[dict]]:
    return conn.run("node_counts"), conn.run("relationship_counts")


@pytest.mark.parametrize("stop_after", [1, 8, 20])
def test_a_killed_force_reingest_never_shows_a_partial_circuit(
        data_dir: Path, database_name: str, bundle_dir: Path, tmp_path: Path, stop_after: int) -> None:
    tables = read_bundle_tables(bundle_dir)
    class_id = f"{tables.model_name}/{tables.meta.class_index}"
    with connect(data_dir, database=database_name) as conn:
        write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=40)
        complete, graph = _rows(conn, class_id), _graph(conn)
        assert json.loads(complete)  # the class's circuit has rows
        answers: list[str] = []
        done = threading.Event()

        def reader() -> None:
            with connect(data_dir, database=conn.database) as other:
                while not done.is_set():
                    answers.append(_rows(other, class_id))

        thread = threading.Thread(target=reader)
        thread.start()
        marker = tmp_path / "stopped"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(bundle_dir), str(data_dir), conn.database,
                                 str(stop_after), str(marker)], env=env, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the writer never reached its stop point"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            after_kill = len(answers)
            time.sleep(1.0)
        finally:
            done.set()
            thread.join(timeout=60)
            if proc.poll() is None:
                proc.kill()
        empty = json.dumps([])
        assert answers[0] == complete and len(answers) > after_kill
        assert set(answers) <= {complete, empty}, "a reader saw a partial circuit"
        assert set(answers[after_kill:]) == {empty}  # killed: the run stays incomplete, the class has no circuit
        assert conn.run("run_status", run_id=tables.run_id)[0]["complete"] is False
        write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=40)  # written again: converges
        assert _rows(conn, class_id) == complete and _graph(conn) == graph
