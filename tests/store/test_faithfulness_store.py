"""Faithfulness measured at ingest: in the bundle, on the Run (same transactions), restored by `load`, repeatable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurflow_graph.bundle.files import read_run_meta
from neurflow_graph.evaluation.faithfulness import measure_faithfulness
from neurflow_graph.evaluation.subject import Subject
from neurflow_graph.jobs import ingest, run_is_complete
from neurflow_graph.query import fetch_faithfulness, fetch_faithfulness_classes
from neurflow_graph.query.describe import describe_stored_run
from neurflow_graph.recipes import load_recipe, prepare_model
from neurflow_graph.store import connect, load_bundle

RECIPE = Path(__file__).resolve().parents[2] / "ingest" / "digits.toml"
SMALL = {"k": 10, "tau": 3, "n_steps": 8, "max_images": 6, "device": "cpu"}
FIGURES = ("layer", "n_core", "width", "logit_drop", "random_logit_drop_mean", "random_logit_drop_std", "logit_z",
           "prob_drop", "kept_share", "random_kept_share_mean", "kept_z", "mask_accuracy", "retain_accuracy",
           "beats_random")


def figures(rows) -> list[tuple]:
    return [tuple(getattr(r, f) if not isinstance(r, dict) else r[f] for f in FIGURES) for r in rows]


@pytest.fixture(scope="module")
def recipe(digits_model):
    return load_recipe(RECIPE).with_overrides(**SMALL)


@pytest.fixture(scope="module")
def stored(recipe, data_dir, tmp_path_factory):
    """Digit 3 ingested once with the default faithfulness: (database, its outcome)."""
    database, out = "faithfulness_once", tmp_path_factory.mktemp("faith")
    with connect(data_dir, database=database) as conn:
        report = ingest(recipe, conn, ("3",), out=out, progress=False)
    (outcome,) = report.outcomes
    assert outcome.status == "stored", outcome
    return database, outcome


def test_the_run_stores_figures_equal_to_measuring_its_bundle_again(recipe, stored, data_dir):
    database, outcome = stored
    bundle = outcome.bundle
    prepared = prepare_model(recipe)
    subject = Subject(spec=prepared.model_spec(), meta=bundle.meta, patches=bundle.patches,
                      circuit=bundle.circuit)
    direct = measure_faithfulness(subject, recipe.faithfulness)
    with connect(data_dir, database=database) as conn:
        rows = fetch_faithfulness(conn, "digits/3")
        told = describe_stored_run(conn, outcome.run_id, "digits/3")  # what ingest prints, read back from the store
        run = conn.driver.execute_query("MATCH (r:Run {id: $id}) RETURN properties(r) AS p", id=outcome.run_id,
                                        database_=conn.database).records[0]["p"]
    for got, want in zip(figures(rows), figures(direct.layers), strict=True):
        assert got[0] == want[0] and got[1:] == pytest.approx(want[1:], rel=1e-9), (got, want)
    assert [r.layer for r in rows] == list(bundle.circuit.layers[1:])
    assert {(r.sets, r.seed) for r in rows} == {(recipe.faithfulness.sets, recipe.faithfulness.seed)}
    assert run["faithfulness_verdict"] == direct.summary()["verdict"]
    assert f"faithfulness: {rows[0].verdict}; z (mask / retain) by layer: {rows[0].layer} " in told
    assert json.loads(run["faithfulness_layers_json"]) == json.loads(json.dumps(direct.layers))
    assert run["stage_seconds_faithfulness"] > 0  # its cost sits with the stage times
    assert list(read_run_meta(outcome.bundle_dir / "run.json").faithfulness.layers) == json.loads(
        json.dumps(direct.layers))


def test_a_class_ranking_by_faithfulness(stored, data_dir):
    database, outcome = stored
    with connect(data_dir, database=database) as conn:
        ranked = fetch_faithfulness_classes(conn, model="digits")
        rows = fetch_faithfulness(conn, "digits/3")
        below = fetch_faithfulness_classes(conn, max_z=ranked[0].weakest_z)
    tested = [r for r in rows if r.n_core < r.width]
    assert [r.run_id for r in ranked] == [outcome.run_id]
    assert ranked[0].weakest_z == min(r.logit_z for r in tested)
    assert ranked[0].n_beating == sum(r.beats_random for r in tested)
    assert list(below) == []  # strictly below its own weakest z: nothing
    assert list(ranked.to_pandas()["class_id"]) == ["digits/3"]
    assert list(rows.to_pandas()["layer"]) == [r.layer for r in rows]


def test_reingest_gives_identical_figures_and_load_restores_them(recipe, stored, data_dir, tmp_path):
    database, outcome = stored
    with connect(data_dir, database=database) as conn:
        before = figures(fetch_faithfulness(conn, "digits/3"))
        again = ingest(recipe, conn, ("3",), force=True, out=tmp_path / "again", progress=False)
        after = figures(fetch_faithfulness(conn, "digits/3"))
    assert again.outcomes[0].run_id == outcome.run_id
    assert after == before
    load_bundle(outcome.bundle_dir, data_dir=data_dir, database="faithfulness_loaded")
    with connect(data_dir, database="faithfulness_loaded") as conn:
        assert figures(fetch_faithfulness(conn, "digits/3")) == before


def test_a_run_killed_during_the_faithfulness_stage_is_incomplete_until_the_next_ingest(recipe, data_dir, tmp_path):
    def kill(line: str) -> None:
        if line.startswith("  faithfulness "):
            raise KeyboardInterrupt("killed during the faithfulness stage")

    with connect(data_dir, database="faithfulness_killed") as conn:
        with pytest.raises(KeyboardInterrupt):
            ingest(recipe, conn, ("3",), out=tmp_path / "runs", progress=False, log=kill)
        runs = conn.run("list_runs")
        assert all(not run_is_complete(conn, r["run_id"]) for r in runs)
        assert not (tmp_path / "runs" / "3").exists()  # no bundle without its figures
        (outcome,) = ingest(recipe, conn, ("3",), out=tmp_path / "runs", progress=False).outcomes
        assert outcome.status == "stored" and run_is_complete(conn, outcome.run_id)
        assert len(fetch_faithfulness(conn, "digits/3")) == len(outcome.bundle.circuit.layers) - 1


def test_off_stores_no_figures_and_keeps_the_run_id(recipe, stored, data_dir, tmp_path):
    _, measured = stored
    off = recipe.with_overrides(faithfulness="off")
    with connect(data_dir, database="faithfulness_off") as conn:
        (outcome,) = ingest(off, conn, ("3",), out=tmp_path, progress=False).outcomes
        assert outcome.run_id == measured.run_id  # faithfulness settings are not part of the run's identity
        assert list(fetch_faithfulness(conn, "digits/3")) == []
        assert list(fetch_faithfulness_classes(conn)) == []
    assert "faithfulness" not in read_run_meta(outcome.bundle_dir / "run.json").record


def test_a_reused_bundle_without_figures_gets_them_measured_on_the_runs_own_images(recipe, stored, data_dir,
                                                                                   tmp_path):
    _, measured = stored
    with connect(data_dir, database="faithfulness_reuse_off") as conn:
        ingest(recipe.with_overrides(faithfulness="off"), conn, ("3",), out=tmp_path, by_run_id=True, progress=False)
    lines: list[str] = []
    with connect(data_dir, database="faithfulness_reuse_on") as conn:
        (outcome,) = ingest(recipe, conn, ("3",), out=tmp_path, by_run_id=True, progress=False,
                            log=lines.append).outcomes
        rows = fetch_faithfulness(conn, "digits/3")
    assert outcome.status == "stored" and not outcome.computed  # the circuit was not computed again
    assert any("faithfulness measured and added" in line for line in lines), lines
    assert figures(rows) == figures(measured.bundle.meta.faithfulness.layers)  # as a fresh run's
    assert read_run_meta(tmp_path / outcome.run_id / "run.json").faithfulness.layers == \
        measured.bundle.meta.faithfulness.layers


def test_groups_level_stores_debugs_figures_on_each_group(recipe, data_dir, tmp_path):
    from neurflow_graph.debugging import debug_images, layer_groups_from_bundle
    from neurflow_graph.debugging.faithfulness import known_random_figures

    groups = recipe.with_overrides(faithfulness="groups")
    with connect(data_dir, database="faithfulness_groups") as conn:
        (outcome,) = ingest(groups, conn, ("3",), out=tmp_path, progress=False).outcomes
        stored = {r["id"]: r for r in conn.driver.execute_query(
            "MATCH (g:NeuronGroup {run_id: $run}) WHERE g.faith_logit_drop IS NOT NULL "
            "RETURN g.id AS id, g.layer AS layer, g.faith_logit_drop AS drop, "
            "g.faith_random_logit_drop_mean AS random", run=outcome.run_id, database_=conn.database).records}
    layer = outcome.bundle.circuit.layers[1]
    prepared = prepare_model(recipe)
    result = debug_images(prepared.model, outcome.bundle.patches.images,
                          layer_groups_from_bundle(outcome.bundle_dir, layer), outcome.class_index,
                          normalize=prepared.preset.normalize, seeds=recipe.faithfulness.sets,
                          seed=recipe.faithfulness.seed)
    assert result.groups
    for g in result.groups:
        assert stored[g.group.id]["drop"] == pytest.approx(g.mean_logit_drop, rel=1e-5)
        assert stored[g.group.id]["random"] == pytest.approx(float(g.random_logit_drop.mean()), rel=1e-5)
    # debug with the same seeds on the run's own images reads the random draws instead of masking them again
    sha = outcome.bundle.meta.images.sha256
    known = known_random_figures(outcome.bundle.meta, sha, recipe.faithfulness.sets, recipe.faithfulness.seed)
    assert {g.group.group_id for g in result.groups} <= set(known)
    reread = debug_images(prepared.model, outcome.bundle.patches.images,
                          layer_groups_from_bundle(outcome.bundle_dir, layer), outcome.class_index,
                          normalize=prepared.preset.normalize, seeds=recipe.faithfulness.sets,
                          seed=recipe.faithfulness.seed, known=known)
    for a, b in zip(result.groups, reread.groups, strict=True):
        assert a.random_sets == b.random_sets and a.flipped == b.flipped and a.top_images == b.top_images
        np.testing.assert_allclose(b.logit_drop, a.logit_drop, rtol=1e-6)
        np.testing.assert_allclose(b.random_logit_drop, a.random_logit_drop, rtol=1e-6)
        np.testing.assert_array_equal(b.random_flipped, a.random_flipped)
    assert known_random_figures(outcome.bundle.meta, sha, recipe.faithfulness.sets + 1, 0) == {}
    assert known_random_figures(outcome.bundle.meta, sha[:-1], recipe.faithfulness.sets, 0) == {}


def test_show_draws_the_verdict_and_the_figures_next_to_the_circuit(stored, data_dir):
    from neurflow_graph.query import fetch_class_circuit, fetch_run_info
    from neurflow_graph.render import render_circuit_html
    from neurflow_graph.render.faithfulness import faithfulness_text, layer_verdict

    database, outcome = stored
    with connect(data_dir, database=database) as conn:
        circuit = fetch_class_circuit(conn, "digits/3")
        run = fetch_run_info(conn, circuit.run_id)
        rows = fetch_faithfulness(conn, "digits/3")
    page = render_circuit_html(circuit, run)
    assert "How far to trust it" in page and rows[0].verdict.split(":")[0] in page
    for r in rows:
        assert f"<td>{r.layer}</td><td class='num'>{r.n_core} / {r.width}</td>" in page
        assert layer_verdict(dict(r.__dict__)) in page
    assert faithfulness_text(run).startswith(f"faithfulness: {rows[0].verdict}")
