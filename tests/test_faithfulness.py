"""Faithfulness of a circuit (evaluation/faithfulness.py) on the real digits CNN and a real run of digit 3."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from neurflow_graph.engine.params import FaithfulnessSettings
from neurflow_graph.errors import ConfigError
from neurflow_graph.evaluation.faithfulness import Z_BEATS, measure_faithfulness
from neurflow_graph.evaluation.fidelity import circuit_neurons, evaluate_fidelity
from neurflow_graph.evaluation.masking import keep_mask, masked_outputs
from neurflow_graph.evaluation.stats import random_sets
from neurflow_graph.evaluation.subject import Subject

SETTINGS = FaithfulnessSettings(level="layers", sets=12, seed=5)


@pytest.fixture(scope="module")
def subject(digits_spec, digits_bundle):
    b = digits_bundle
    return Subject(spec=digits_spec, meta=b.meta, patches=b.patches, circuit=b.circuit)


@pytest.fixture(scope="module")
def measured(subject):
    return measure_faithfulness(subject, SETTINGS)


def direct(subject: Subject, layer: str, index: int, settings: FaithfulnessSettings) -> dict[str, float]:
    """The figures of one layer computed the plain way: the whole model with a mask hook on the layer (no slice),
    the random sets drawn by stats.random_sets from the documented seed, means and spreads in numpy."""
    width = subject.widths()[layer]
    core = circuit_neurons(subject, subject.tau)[layer]
    randoms = random_sets(np.random.default_rng((settings.seed, index)), width, len(core), settings.sets)
    sets = [core, *randoms]
    keep = np.stack([np.ones(width, bool)] + [keep_mask(width, s, "mask") for s in sets]
                    + [keep_mask(width, s, "retain") for s in sets])
    images = subject.spec.normalize(subject.images)
    logits = masked_outputs(subject.spec.model, images, {layer: keep}).astype(np.float64)
    cls = logits[:, :, subject.class_index]
    prob = torch.from_numpy(logits).softmax(dim=2).numpy()[:, :, subject.class_index]
    n = len(sets)
    drop = (cls[0] - cls[1:1 + n]).mean(axis=1)
    prob_drop = (prob[0] - prob[1:1 + n]).mean(axis=1)
    kept = cls[1 + n:].mean(axis=1) / cls[0].mean()
    return {"logit_drop": drop[0], "random_logit_drop_mean": drop[1:].mean(),
            "random_logit_drop_std": drop[1:].std(ddof=1), "prob_drop": prob_drop[0],
            "random_prob_drop_mean": prob_drop[1:].mean(), "kept_share": kept[0],
            "random_kept_share_mean": kept[1:].mean(), "random_kept_share_std": kept[1:].std(ddof=1)}


def test_stored_figures_equal_a_direct_computation_with_the_same_seeds(subject, measured):
    layers = subject.circuit.layers[1:]
    assert [r["layer"] for r in measured.layers] == list(layers)
    fidelity = evaluate_fidelity(subject, taus=(subject.tau,), samples=1).to_pylist()
    for index, (layer, row) in enumerate(zip(layers, measured.layers, strict=True), start=1):
        expected = direct(subject, layer, index, SETTINGS)
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-4, abs=1e-5), (layer, name)
        # the share of images still predicted as the class equals `evaluate fidelity`'s (single scope, core)
        for mode in ("mask", "retain"):
            (acc,) = [r["accuracy"] for r in fidelity if r["layer"] == layer and r["scope"] == "single"
                      and r["mode"] == mode and r["method"] == "core"]
            assert row[f"{mode}_accuracy"] == pytest.approx(acc), (layer, mode)
        assert len(row["random_logit_drops"]) == SETTINGS.sets


def test_measuring_again_gives_identical_figures(subject, measured):
    again = measure_faithfulness(subject, SETTINGS)
    assert again.layers == measured.layers
    other_seed = measure_faithfulness(subject, FaithfulnessSettings(sets=12, seed=6))
    assert other_seed.layers[0]["random_logit_drops"] != measured.layers[0]["random_logit_drops"]


def test_core_beats_random_at_the_top_layer_of_the_trained_model(measured):
    top = measured.layers[0]
    margin = 3 * top["random_logit_drop_std"]  # derived from the measured spread of the random sets
    assert top["logit_drop"] > top["random_logit_drop_mean"] + margin, top
    assert top["beats_random"] and top["logit_z"] >= Z_BEATS
    assert measured.summary()["n_beating"] >= 1


def test_with_the_top_layer_shuffled_core_does_not_beat_random(subject, measured):
    """Permuting the top layer's filters keeps every figure's scale but breaks which channels the logit reads."""
    layer = subject.circuit.layers[1]
    zs = []
    for seed in range(5):
        model = copy.deepcopy(subject.spec.model)
        conv = dict(model.named_modules())[layer].conv
        perm = torch.randperm(conv.out_channels, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            conv.weight.copy_(conv.weight[perm])
            conv.bias.copy_(conv.bias[perm])
        spec = dataclasses.replace(subject.spec, model=model)
        shuffled = Subject(spec=spec, meta=subject.meta, patches=subject.patches, circuit=subject.circuit)
        zs.append(measure_faithfulness(shuffled, SETTINGS).layers[0]["logit_z"])
    assert float(np.mean(zs)) < Z_BEATS, zs
    assert float(np.mean(zs)) < measured.layers[0]["logit_z"] - 2, zs


def test_summary_names_the_weakest_layer_and_the_whole_layers(measured):
    s = measured.summary()
    tested = [r for r in measured.layers if r["n_core"] < r["width"]]
    assert s["weakest_z"] == min(r["logit_z"] for r in tested)
    assert s["beats_random_everywhere"] == all(r["beats_random"] for r in tested)
    assert s["whole_layers"] == [r["layer"] for r in measured.layers if r["n_core"] >= r["width"]]
    record = measured.record()
    assert (record["sets"], record["seed"], record["level"]) == (12, 5, "layers")


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"level": "some"}, "faithfulness must be one of off, layers, groups"),
    ({"sets": 3}, "sets must be an integer >= 10"),
    ({"seed": -1}, "seed must be an integer >= 0"),
])
def test_bad_settings_are_one_line_errors(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        FaithfulnessSettings(**kwargs)


def test_a_recipe_sets_faithfulness_and_the_command_line_overrides_it(tmp_path):
    from pathlib import Path

    from neurflow_graph.recipes import load_recipe

    shipped = Path(__file__).resolve().parents[1] / "ingest" / "digits.toml"
    recipe = tmp_path / "r.toml"
    recipe.write_text(shipped.read_text() + '\n[faithfulness]\nlevel = "groups"\nsets = 12\nseed = 3\n')
    loaded = load_recipe(recipe)
    assert loaded.faithfulness == FaithfulnessSettings("groups", 12, 3)
    assert loaded.with_overrides(faithfulness="off").faithfulness == FaithfulnessSettings("off", 12, 3)
    assert load_recipe(shipped).faithfulness == FaithfulnessSettings()  # on by default, per layer
    recipe.write_text(shipped.read_text() + "\n[faithfulness]\nsets = 4\n")
    with pytest.raises(ConfigError, match=r"\[faithfulness\] sets = 4 is not accepted; use an integer >= 10"):
        load_recipe(recipe)
    recipe.write_text(shipped.read_text() + "\n[faithfulness]\nsamples = 4\n")
    with pytest.raises(ConfigError, match=r"unknown key 'samples' in \[faithfulness\]"):
        load_recipe(recipe)


def test_run_prints_the_verdict_with_the_stage_times_and_off_skips_it(tmp_path):
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from neurflow_graph.cli.main import main

    recipe = str(Path(__file__).resolve().parents[1] / "ingest" / "digits.toml")
    small = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "3", "--quiet"]
    on = CliRunner().invoke(main, ["run", recipe, "--out", str(tmp_path / "on"), *small], catch_exceptions=False)
    assert on.exit_code == 0, on.output
    run = json.loads((tmp_path / "on" / "run.json").read_text())
    assert f"faithfulness {run['stage_seconds']['faithfulness']:.1f}s" in on.output  # with the stage times
    assert f"faithfulness (layers, 10 random sets, seed 0): {run['faithfulness']['verdict']}" in on.output
    off = CliRunner().invoke(main, ["run", recipe, "--out", str(tmp_path / "off"), "--faithfulness", "off", *small],
                             catch_exceptions=False)
    assert off.exit_code == 0, off.output
    run_off = json.loads((tmp_path / "off" / "run.json").read_text())
    assert "faithfulness" not in run_off and run_off["run_id"] == run["run_id"]
    bad = CliRunner().invoke(main, ["run", recipe, "--out", str(tmp_path / "x"), "--faithfulness", "some"])
    assert bad.exit_code == 2 and "'some' is not one of 'off', 'layers', 'groups'" in bad.output


def test_the_page_says_when_a_run_was_not_measured(subject, measured):
    from neurflow_graph.records import Run
    from neurflow_graph.render.faithfulness import faithfulness_html, faithfulness_text

    bare = Run(run_id="r", complete=True, class_id="digits/3", class_name="3", model="digits", run_json={})
    assert "not measured" in faithfulness_text(bare) and "not measured" in faithfulness_html(bare)
    assert faithfulness_html(None) == ""
    run = Run(run_id="r", complete=True, class_id="digits/3", class_name="3", model="digits",
              run_json={**subject.meta.record, "faithfulness": measured.record()})
    assert run.meta is not None and run.meta.faithfulness is not None  # read through the typed record
    page = faithfulness_html(run)
    assert measured.summary()["verdict"] in page
    assert all(f"<td>{r['layer']}</td>" in page for r in measured.layers)


def test_the_stage_adds_its_figures_to_the_record_and_takes_them_back(subject, measured):
    """The faithfulness stage changes the run record through its methods: the figures and their seconds join it,
    typed as read back, and removing them gives the engine's record again (the run id never changes)."""
    meta = subject.meta.with_faithfulness(measured.record(), 1.25)
    assert meta.faithfulness is not None and meta.faithfulness.verdict == measured.summary()["verdict"]
    assert list(meta.faithfulness.layers) == measured.record()["layers"]
    assert meta.stage_seconds == {**subject.meta.stage_seconds, "faithfulness": 1.25}
    assert list(meta.record)[-1] == "faithfulness" and meta.run_id == subject.meta.run_id
    assert subject.meta.faithfulness is None  # the record it came from is unchanged
    again = meta.without_faithfulness()
    assert again == subject.meta and again.record == subject.meta.record
