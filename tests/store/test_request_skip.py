"""A job skips a class whose request is complete in the store before filtering its images (docs/scale.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from neurflow_graph.jobs import ingest, store_bundle
from neurflow_graph.recipes import load_recipe
from neurflow_graph.store import connect

RECIPE = Path(__file__).resolve().parents[2] / "ingest" / "digits.toml"
SMALL = {"k": 10, "tau": 3, "n_steps": 8, "max_images": 3, "device": "cpu"}
CLASSES = ("1", "2", "4")


def graph(conn) -> tuple[list, list]:
    """Every node and relationship with all its properties (timestamps included: a skip rewrites nothing), sorted."""
    nodes = conn.driver.execute_query("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props",
                                      database_=conn.database).records
    rels = conn.driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, a.id AS start, b.id AS end, properties(r) AS props",
        database_=conn.database).records
    return (sorted(json.dumps([sorted(r["labels"]), r["props"]], sort_keys=True, default=str) for r in nodes),
            sorted(json.dumps([r["type"], r["start"], r["end"], r["props"]], sort_keys=True, default=str)
                   for r in rels))


@pytest.fixture(scope="module")
def recipe(digits_model):
    return load_recipe(RECIPE).with_overrides(**SMALL)


@pytest.fixture(scope="module")
def stored(recipe, data_dir, tmp_path_factory):
    """A database holding the CLASSES, ingested once; (database, bundle root, the first job's report)."""
    database, out = "request_skip", tmp_path_factory.mktemp("first")
    with connect(data_dir, database=database) as conn:
        report = ingest(recipe, conn, CLASSES, out=out, progress=False)
    assert [o.status for o in report.outcomes] == ["stored"] * len(CLASSES), report
    return database, out, report


def test_the_second_ingest_skips_every_class_before_its_images_are_filtered(recipe, stored, data_dir, tmp_path):
    database, _, first = stored
    lines: list[str] = []
    with connect(data_dir, database=database) as conn:
        keys = {r["run_id"]: r["request_key"] for r in conn.run("complete_runs")}
        before = graph(conn)
        again = ingest(recipe, conn, CLASSES, out=tmp_path / "again", progress=False, log=lines.append)
        after = graph(conn)
    assert set(keys) == {o.run_id for o in first.outcomes}
    assert all(keys.values()) and len(set(keys.values())) == len(CLASSES)  # one request key per run, on the Run
    assert [(o.status, o.skipped_by, o.run_id) for o in again.outcomes] == [
        ("skipped", "request", o.run_id) for o in first.outcomes]
    assert all(o.kept == 0 and o.bundle_dir is None for o in again.outcomes)  # no image filtered, no bundle
    assert not any("kept" in line for line in lines), lines  # the line a class prints once its images are filtered
    assert sum("request already complete in the store" in line for line in lines) == len(CLASSES), lines
    assert not (tmp_path / "again").exists()
    assert after == before


def test_the_request_key_is_in_run_json_and_a_speed_setting_keeps_it(recipe, stored, data_dir, tmp_path):
    from neurflow_graph.bundle.files import read_run_meta

    database, out, first = stored
    meta = read_run_meta(first.outcomes[0].bundle_dir / "run.json")
    with connect(data_dir, database=database) as conn:
        keys = {r["run_id"]: r["request_key"] for r in conn.run("complete_runs")}
        faster = ingest(recipe.with_overrides(batch_size=5), conn, CLASSES[:1], out=tmp_path, progress=False)
    assert meta.request_key == keys[meta.run_id]
    assert meta.request_key.startswith(f"digits-c{first.outcomes[0].class_index}-r")
    assert faster.outcomes[0].skipped_by == "request"  # batch_size is not in the run id, so not in the request


@pytest.mark.parametrize("change", [{"tau": 2}, {"k": 9}, {"max_images": 2}], ids=["tau", "k", "max_images"])
def test_a_changed_parameter_is_a_new_request(recipe, stored, data_dir, database_name, tmp_path, change):
    database, _, first = stored
    with connect(data_dir, database=database) as conn:
        known = {r["request_key"] for r in conn.run("complete_runs")}
    with connect(data_dir, database=database_name) as conn:  # a copy of the stored runs, then the changed request
        for outcome in first.outcomes[:1]:
            store_bundle(conn, outcome.bundle_dir)
        report = ingest(recipe.with_overrides(**change), conn, CLASSES[:1], out=tmp_path, progress=False)
        keys = {r["run_id"]: r["request_key"] for r in conn.run("complete_runs")}
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.computed) == ("stored", True)
    assert outcome.run_id != first.outcomes[0].run_id and keys[outcome.run_id] not in known


def test_force_recomputes_a_complete_request(recipe, stored, data_dir, database_name, tmp_path):
    _, _, first = stored
    with connect(data_dir, database=database_name) as conn:
        store_bundle(conn, first.outcomes[0].bundle_dir)
        report = ingest(recipe, conn, CLASSES[:1], force=True, out=tmp_path, progress=False)
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.computed, outcome.run_id) == ("stored", True, first.outcomes[0].run_id)


def test_a_run_stored_without_a_request_key_is_skipped_by_its_run_id(recipe, stored, data_dir, database_name,
                                                                     tmp_path):
    """A store written before request keys (or from such a bundle) still skips its runs, once images are filtered."""
    _, _, first = stored
    old = tmp_path / "old-bundle"
    shutil.copytree(first.outcomes[0].bundle_dir, old)
    run_json = json.loads((old / "run.json").read_text())
    del run_json["request_key"]
    (old / "run.json").write_text(json.dumps(run_json))
    with connect(data_dir, database=database_name) as conn:
        store_bundle(conn, old)
        assert [r["request_key"] for r in conn.run("complete_runs")] == [None]
        report = ingest(recipe, conn, CLASSES[:1], out=tmp_path / "again", progress=False)
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.skipped_by, outcome.run_id) == ("skipped", "run", first.outcomes[0].run_id)
    assert outcome.kept > 0  # this skip came after the class's images were filtered
