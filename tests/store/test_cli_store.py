"""The store commands of the CLI on the real embedded ArcadeDB server."""

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.store import connect

RECIPE = str(Path(__file__).resolve().parents[2] / "ingest" / "digits.toml")
SMALL_RUN = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "3", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_ingest_writes_the_circuit_then_skips_it_then_force_recomputes(data_dir, database_name, tmp_path):
    store = ["--data-dir", data_dir, "--database", database_name]
    first = invoke("ingest", RECIPE, "--out", tmp_path / "b", *store, *SMALL_RUN)
    assert first.exit_code == 0, first.output
    assert "(complete: True)" in first.output and "fc/g0" in first.output
    assert "MATCH (root:NeuronGroup" in first.output  # a ready-to-paste query
    assert "look at it in Neo4j Browser or Desktop: connect URL bolt://127.0.0.1:" in first.output
    assert (tmp_path / "b" / "3" / "run.json").is_file()
    second = invoke("ingest", RECIPE, "--out", tmp_path / "b", *store, *SMALL_RUN)
    assert second.exit_code == 0 and "already complete in the store; skipped" in second.output
    forced = invoke("ingest", RECIPE, "--out", tmp_path / "b", "--force", *store, *SMALL_RUN)
    assert forced.exit_code == 0 and "skipped" not in forced.output and "wrote" in forced.output
    other = invoke("ingest", RECIPE, "--out", tmp_path / "b", "--tau", "2", *store, *SMALL_RUN[2:])
    assert other.exit_code == 0 and "skipped" not in other.output  # new parameters: a new run


def test_load_writes_an_existing_bundle(data_dir, database_name, digits_bundle_dir):
    result = invoke("load", digits_bundle_dir, "--data-dir", data_dir, "--database", database_name, "--quiet")
    assert result.exit_code == 0, result.output
    assert "relationships in" in result.output


def test_load_waits_for_the_store_writer_lock(data_dir, database_name, digits_bundle_dir):
    result = []
    load = threading.Thread(target=lambda: result.append(
        invoke("load", digits_bundle_dir, "--data-dir", data_dir, "--database", database_name, "--quiet")))
    with connect(data_dir, database=database_name) as conn, conn.writing():  # another writer holds the store
        load.start()
        load.join(timeout=3.0)
        assert load.is_alive() and not conn.run("list_runs")  # it waits, having written nothing
    load.join(timeout=120)
    assert result and result[0].exit_code == 0, result
    assert "relationships in" in result[0].output


def test_load_of_a_broken_bundle_is_a_one_line_error(data_dir, database_name, tmp_path):
    result = invoke("load", tmp_path, "--data-dir", data_dir, "--database", database_name)
    assert result.exit_code == 1 and "run.json" in result.output and result.output.count("\n") == 1


def test_db_commands_find_the_running_server(data_dir):
    status = invoke("db", "status", "--data-dir", data_dir)
    assert status.exit_code == 0 and "bolt://127.0.0.1:" in status.output
    started = invoke("db", "start", "--data-dir", data_dir)
    assert started.exit_code == 0 and "running: bolt://127.0.0.1:" in started.output
    assert invoke("db", "path", "--data-dir", data_dir).output.strip() == str(data_dir)
    password = (Path(data_dir) / "root-password").read_text().strip()
    assert password not in status.output + started.output


def test_unreachable_neo4j_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:9")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-value")
    result = invoke("ingest", RECIPE, "--out", tmp_path / "b", *SMALL_RUN)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "127.0.0.1:9" in result.output and "s3cret-value" not in result.output


@pytest.mark.parametrize(
    "command, says", [(["db", "stop"], "not running"), (["db", "status"], "no ArcadeDB server runs")]
)
def test_db_commands_on_an_empty_data_dir(tmp_path, command, says):
    result = invoke(*command, "--data-dir", tmp_path / "empty")
    assert result.exit_code == 0 and says in result.output
