"""Every write of every command holds the store's one writer lock; a writer that has to wait says for whom."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from neurflow_graph.store import connect
from neurflow_graph.store.connection import WAITING

_STORE_EVALUATION = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from neurflow_graph.bundle.files import read_run_meta
    from neurflow_graph.evaluation.record import evaluation_record
    from neurflow_graph.jobs import store_evaluations
    from neurflow_graph.store import connect

    bundle, data_dir, database, tau = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    meta = read_run_meta(bundle / "run.json")
    record = evaluation_record("fidelity", meta, {"tau": tau}, {"probe": float(tau)}, [])
    with connect(data_dir, database=database) as conn:
        for stored in store_evaluations(conn, [record], [bundle]):
            print(f"stored Evaluation {stored['id']} -> Run {stored['run_id']}")
    """
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}


def test_two_first_writes_of_evaluate_to_a_fresh_store_both_succeed(
    data_dir: Path, database_name: str, digits_bundle_dir: Path
) -> None:
    """The trial's failure: two `evaluate` processes storing at once into a fresh database (schema, run, results)."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _STORE_EVALUATION, str(digits_bundle_dir), str(data_dir), database_name, str(tau)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )
        for tau in (2, 3)
    ]
    outputs = [w.communicate(timeout=300) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "stored Evaluation fidelity-" in out
    run_id = json.loads((digits_bundle_dir / "run.json").read_text())["run_id"]
    with connect(data_dir, database=database_name) as conn:
        rows = conn.driver.execute_query(
            "MATCH (e:Evaluation)-[:EVALUATES]->(r:Run) RETURN r.id AS run, r.complete AS complete, "
            "e.summary_probe AS probe ORDER BY probe",
            database_=conn.database,
        ).records
        assert [r.data() for r in rows] == [{"run": run_id, "complete": True, "probe": p} for p in (2.0, 3.0)]
        assert conn.run("node_counts")  # one schema version node, one run: no half-written graph
        assert len(conn.run("list_runs")) == 1


def test_a_waiting_writer_says_whom_it_waits_for_once(
    data_dir: Path, database_name: str, digits_bundle_dir: Path, tmp_path: Path
) -> None:
    stderr = tmp_path / "stderr"
    with connect(data_dir, database=database_name) as conn, conn.writing():  # this process is the writer
        with open(stderr, "w") as err:
            load = subprocess.Popen(
                [sys.executable, "-m", "neurflow_graph.cli", "load", str(digits_bundle_dir), "--data-dir",
                 str(data_dir), "--database", database_name, "--quiet"],
                stdout=subprocess.PIPE, stderr=err, text=True, env=_env(),
            )
        deadline = time.monotonic() + 180
        while WAITING not in stderr.read_text() and load.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # it keeps waiting, silently after its one line
        assert load.poll() is None, stderr.read_text()
        assert conn.run("list_runs") == []  # nothing written while it waits
    out, _ = load.communicate(timeout=300)
    said = stderr.read_text()
    assert load.returncode == 0, said
    assert said.count(f"{WAITING} (pid {os.getpid()})") == 1, said
    assert "relationships in" in out


def test_the_writer_lock_nests_in_one_thread_and_excludes_another(tmp_path: Path) -> None:
    import threading

    from neurflow_graph.store.filelock import exclusive

    lock, order = tmp_path / "writer.lock", []

    def take() -> None:
        with exclusive(lock):
            order.append("other")

    with exclusive(lock), exclusive(lock):  # a helper that locks inside a locked block does not wait on itself
        other = threading.Thread(target=take)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive() and not order  # another thread waits
        order.append("first")
    other.join(timeout=10)
    assert order == ["first", "other"]
