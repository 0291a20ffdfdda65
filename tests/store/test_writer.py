"""The bundle writer against the real embedded server: values read back, idempotence, crash safety, bad input."""

from __future__ import annotations

import json
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurflow_graph.errors import ArtifactError, ConfigError, StoreError
from neurflow_graph.query.fetch import fetch_circuit_table, fetch_run_status, fetch_runs
from neurflow_graph.store import (
    connect,
    load_bundle,
    read_bundle_tables,
    server,
    write_run_graph,
)
from neurflow_graph.store import rows as R
from neurflow_graph.store.connection import Connection


class Interrupted(Exception):
    """Raised by the on_batch hook to stop an ingest between two batches, as a crash would."""


def _stop_after(n: int):
    seen = []

    def hook(query: str, index: int) -> None:
        seen.append((query, index))
        if len(seen) >= n:
            raise Interrupted(f"stopped after {query} batch {index}")

    return hook


def _graph(conn: Connection) -> tuple[list[dict], list[dict]]:
    return conn.run("node_counts"), conn.run("relationship_counts")


def _some_sg(bundle: Path) -> str:
    return pq.read_table(bundle / "hyperedges.parquet").column("parent_sg_id")[0].as_py()


def _expected_counts(bundle: Path) -> dict[str, int]:
    tables = read_bundle_tables(bundle)
    ng = tables.neuron_groups
    return {
        "neurons": tables.neurons.num_rows,
        "patches": tables.patches.num_rows,
        "semantic_groups": tables.semantic_groups.num_rows,
        "neuron_groups": ng.num_rows,
        "hyperedges": tables.hyperedges.num_rows,
        "group_edges": tables.group_edges.num_rows,
        "memberships": sum(len(x) for x in ng.column("neuron_ids").to_pylist()),
        "in_group": sum(len(x) for x in ng.column("sg_ids").to_pylist()),
        "exemplars": sum(len(x) for x in ng.column("exemplar_patch_ids").to_pylist()),
        "has_semantic_group": tables.semantic_groups.num_rows,
        "logit_of": 1,
    }


def test_bundle_counts_read_back_equal_the_tables(conn: Connection, bundle_dir: Path) -> None:
    report = write_run_graph(conn.driver, conn.database, bundle_dir)
    run_id = report.run_id
    (counts,) = conn.run("run_counts", run_id=run_id)
    assert counts.pop("run_id") == run_id
    assert counts.pop("complete") is True
    assert counts == _expected_counts(bundle_dir)
    (status,) = conn.run("run_status", run_id=run_id)
    assert status["complete"] is True
    assert status["n_hyperedges"] == counts["hyperedges"]
    assert report.batches >= 10 and report.nodes > 0 and report.relationships > 0


def test_hyperedge_values_equal_the_parquet_table(conn: Connection, bundle_dir: Path) -> None:
    run_id = write_run_graph(conn.driver, conn.database, bundle_dir).run_id
    edges = pq.read_table(bundle_dir / "hyperedges.parquet").to_pylist()
    by_sg = defaultdict(list)
    for e in edges:
        by_sg[e["parent_sg_id"]].append(e)
    for sg_id in sorted(by_sg)[:5]:
        stored = conn.run("semantic_group_drivers", semantic_group_id=f"{run_id}/{sg_id}")
        expected = sorted(by_sg[sg_id], key=lambda e: (e["core_rank"], e["child_id"]))
        assert [r["neuron_id"] for r in stored] == [e["child_id"] for e in expected]
        for got, want in zip(stored, expected, strict=True):
            assert got["weight"] == want["weight"]
            assert got["score"] == want["score"]
            assert got["core_score"] == want["core_score"]
            assert got["core_rank"] == want["core_rank"]
        assert sum(abs(r["weight"]) for r in stored) == pytest.approx(1.0)


def test_nodes_carry_the_bundle_values(conn: Connection, bundle_dir: Path) -> None:
    run_id = write_run_graph(conn.driver, conn.database, bundle_dir).run_id
    run_json = json.loads((bundle_dir / "run.json").read_text())
    records, _, _ = conn.driver.execute_query(
        "MATCH (r:Run {id: $id}) RETURN properties(r) AS p", {"id": run_id}, database_=conn.database
    )
    props = records[0]["p"]
    assert props["params_k"] == run_json["params"]["k"]
    assert props["params_granularities"] == run_json["params"]["granularities"]
    assert props["class_index"] == run_json["class"]["index"]
    assert props["model_name"] == run_json["model"]["name"]
    assert json.loads(props["run_json"]) == run_json
    assert json.loads(props["layer_stats_json"]) == run_json["layer_stats"]
    assert props["bundle_path"] == str(bundle_dir.resolve())

    patch = pq.read_table(bundle_dir / "patches.parquet").to_pylist()[-1]
    records, _, _ = conn.driver.execute_query(
        "MATCH (p:Patch {id: $id}) RETURN properties(p) AS p",
        {"id": f"{run_id}/p{patch['patch_id']}"},
        database_=conn.database,
    )
    stored = records[0]["p"]
    for key in ("image_sha256", "granularity", "x0", "y0", "x1", "y1", "image_index"):
        assert stored[key] == patch[key]

    rows = conn.run("circuit_of_class", class_id=f"{run_json['model']['name']}/{run_json['class']['index']}")
    table = pq.read_table(bundle_dir / "group_edges.parquet")
    assert len(rows) == table.num_rows
    assert {(r["child"], r["parent"]) for r in rows} == set(
        zip(table.column("child_group_id").to_pylist(), table.column("parent_group_id").to_pylist(), strict=True)
    )


@pytest.mark.parametrize("size", [1, 7, 100, 10_000])
def test_batches_bound_the_elements_per_transaction(bundle_dir: Path, size: int) -> None:
    tables = read_bundle_tables(bundle_dir)
    for rows in (R.hyperedge_rows(tables), R.member_rows(tables), R.patch_rows(tables)):
        sizes = R.row_sizes(rows)
        slices = list(R.batches(rows, size))
        assert pa.concat_tables([s for s, _ in slices]).equals(rows)
        assert [n for _, n in slices] == [int(R.row_sizes(s).sum()) for s, _ in slices]
        assert sum(n for _, n in slices) == int(sizes.sum())
        assert all(n <= size or s.num_rows == 1 for s, n in slices)
        firsts = [int(R.row_sizes(s)[0]) for s, _ in slices[1:]]
        assert all(n + first > size for (_, n), first in zip(slices[:-1], firsts, strict=True))  # greedy


def test_ingesting_twice_leaves_identical_counts(conn: Connection, bundle_dir: Path) -> None:
    write_run_graph(conn.driver, conn.database, bundle_dir)
    once = _graph(conn)
    write_run_graph(conn.driver, conn.database, bundle_dir)
    assert _graph(conn) == once


def test_runs_of_two_classes_share_neurons(
    conn: Connection, bundle_dir: Path, digits_bundle_dirs: Callable[[int], Path]
) -> None:
    other = digits_bundle_dirs(5)
    first = write_run_graph(conn.driver, conn.database, bundle_dir)
    second = write_run_graph(conn.driver, conn.database, other)
    ids = set(pq.read_table(bundle_dir / "neurons.parquet").column("neuron_id").to_pylist())
    ids |= set(pq.read_table(other / "neurons.parquet").column("neuron_id").to_pylist())
    counts = {row["label"]: row["count"] for row in conn.run("node_counts")}
    assert counts["Neuron"] == len(ids)
    assert counts["Run"] == 2 and counts["Class"] == 2 and counts["Model"] == 1
    runs = {r.run_id: r for r in fetch_runs(conn)}
    assert runs.keys() == {first.run_id, second.run_id}
    assert all(r.complete for r in runs.values())
    assert runs[second.run_id].class_id == "digits/5" and runs[second.run_id].class_index == 5
    circuit = fetch_circuit_table(conn, "digits/5")
    assert set(circuit.column("run_id").to_pylist()) == {second.run_id}
    assert fetch_run_status(conn, first.run_id)["complete"] is True
    assert fetch_run_status(conn, "no-such-run") is None


@pytest.mark.parametrize("stop_after", [1, 6])
def test_interrupted_ingest_stays_incomplete_then_converges(
    data_dir: Path, database_name: str, bundle_dir: Path, stop_after: int
) -> None:
    with connect(data_dir, database=database_name + "_clean") as clean:
        write_run_graph(clean.driver, clean.database, bundle_dir, batch_size=40)
        expected = _graph(clean)
    with connect(data_dir, database=database_name) as conn:
        with pytest.raises(Interrupted):
            write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=40, on_batch=_stop_after(stop_after))
        run_id = read_bundle_tables(bundle_dir).run_id
        (status,) = conn.run("run_status", run_id=run_id)
        assert status["complete"] is False
        assert [r["complete"] for r in conn.run("list_runs")] == [False]
        assert conn.run("circuit_of_class", class_id="digits/3") == []  # incomplete runs are not served
        write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=40)
        assert conn.run("run_status", run_id=run_id)[0]["complete"] is True
        assert _graph(conn) == expected


def test_reingest_of_a_complete_run_is_incomplete_until_it_ends(conn: Connection, bundle_dir: Path) -> None:
    run_id = write_run_graph(conn.driver, conn.database, bundle_dir).run_id
    with pytest.raises(Interrupted):
        write_run_graph(conn.driver, conn.database, bundle_dir, on_batch=_stop_after(3))
    assert conn.run("run_status", run_id=run_id)[0]["complete"] is False


def test_concurrent_reader_while_ingesting(conn: Connection, bundle_dir: Path) -> None:
    expected = _expected_counts(bundle_dir)
    run_id = read_bundle_tables(bundle_dir).run_id
    seen: list[dict] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        with connect(conn.data_dir, database=conn.database) as other:
            while not done.is_set():
                try:
                    seen.extend(other.run("run_counts", run_id=run_id))
                    other.run("list_runs")
                except BaseException as exc:  # noqa: BLE001 - reported by the test below
                    errors.append(exc)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=25)
    finally:
        done.set()
        thread.join(timeout=60)
    assert not errors
    assert seen, "the reader ran no query"
    for counts in seen:  # whatever the reader saw as complete was the whole run
        if counts["complete"]:
            assert {k: counts[k] for k in expected} == expected


def test_missing_table_names_the_file(tmp_path: Path, bundle_dir: Path, conn: Connection) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    (broken / "hyperedges.parquet").unlink()
    with pytest.raises(ArtifactError, match="hyperedges.parquet"):
        write_run_graph(conn.driver, conn.database, broken)
    assert conn.run("list_runs") == []


def test_missing_column_and_bad_run_json(tmp_path: Path, bundle_dir: Path) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    table = pq.read_table(broken / "group_edges.parquet").drop_columns(["n_edges"])
    pq.write_table(table, broken / "group_edges.parquet")
    with pytest.raises(ArtifactError, match=r"group_edges.parquet lacks column\(s\) n_edges"):
        read_bundle_tables(broken)
    run = json.loads((broken / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps(dict(run, bundle_format=99)))
    with pytest.raises(ArtifactError, match="bundle_format 99"):
        read_bundle_tables(broken)
    (broken / "run.json").write_text(json.dumps(dict(run, complete=False)))
    with pytest.raises(ArtifactError, match="did not complete"):
        read_bundle_tables(broken)
    (broken / "run.json").unlink()
    with pytest.raises(ArtifactError, match="run.json is missing"):
        read_bundle_tables(broken)


def test_inconsistent_tables_leave_the_run_incomplete(tmp_path: Path, bundle_dir: Path, conn: Connection) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    edges = pq.read_table(broken / "hyperedges.parquet").to_pylist()
    edges[0]["child_id"] = "digits/conv1/99999"  # a neuron absent from neurons.parquet
    pq.write_table(pq.read_table(broken / "hyperedges.parquet").from_pylist(edges), broken / "hyperedges.parquet")
    with pytest.raises(StoreError, match="write_hyperedges.*stays incomplete"):
        write_run_graph(conn.driver, conn.database, broken)
    assert [r["complete"] for r in conn.run("list_runs")] == [False]


@pytest.mark.parametrize(("arg", "value"), [("batch_size", 0), ("writers", 0), ("writers", True)])
def test_bad_batch_size_or_writers(conn: Connection, bundle_dir: Path, arg: str, value: object) -> None:
    with pytest.raises(ConfigError, match=arg):
        write_run_graph(conn.driver, conn.database, bundle_dir, **{arg: value})


def test_one_and_three_writers_write_the_same_graph(data_dir: Path, database_name: str, bundle_dir: Path) -> None:
    graphs = []
    for writers in (1, 3):
        with connect(data_dir, database=f"{database_name}_w{writers}") as conn:
            report = write_run_graph(conn.driver, conn.database, bundle_dir, batch_size=40, writers=writers)
            assert conn.run("run_status", run_id=report.run_id)[0]["complete"] is True
            drivers = conn.run("semantic_group_drivers", semantic_group_id=f"{report.run_id}/{_some_sg(bundle_dir)}")
            circuit = conn.run("circuit_of_class", class_id="digits/3")
            graphs.append((_graph(conn), circuit, drivers, report.nodes, report.relationships))
    assert graphs[0] == graphs[1]  # three writers cut the hyper-edges into 3 x 3 blocks: the same edges


def test_load_bundle_and_persistence_across_restart(data_dir: Path, database_name: str, bundle_dir: Path) -> None:
    report = load_bundle(bundle_dir, data_dir=data_dir, database=database_name)
    with connect(data_dir, database=database_name) as conn:
        before = _graph(conn)
    server.stop(data_dir)
    assert server.status(data_dir).state == "stopped"
    server.start(data_dir)
    with connect(data_dir, database=database_name) as conn:
        assert _graph(conn) == before
        assert conn.run("run_status", run_id=report.run_id)[0]["complete"] is True
