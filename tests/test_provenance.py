"""Provenance that cannot lie: the run id hashes the model's weights, and a bad run.json is refused in one line."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from neurflow_graph.bundle.files import read_bundle
from neurflow_graph.cli.main import main
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow, weights_sha256
from neurflow_graph.errors import ArtifactError


def _random_digits_spec(digits_preset, seed: int) -> ModelSpec:
    torch.manual_seed(seed)
    model = digits_preset.build(weights=None)
    return ModelSpec("mynet", model, digits_preset.layers, digits_preset.input_size, digits_preset.normalize)


def test_differently_seeded_models_with_one_name_get_different_run_ids(digits_preset, digits_class3,
                                                                      small_params) -> None:
    flow = NeurFlow(progress=False, **small_params)
    a, b, again = (_random_digits_spec(digits_preset, seed) for seed in (0, 1, 0))
    assert weights_sha256(a.model) != weights_sha256(b.model)
    assert weights_sha256(a.model) == weights_sha256(again.model)  # the digest is of the values, not the object
    ids = [flow.run_id(spec, 3, digits_class3.sha256) for spec in (a, b, again)]
    assert ids[0] != ids[1] and ids[0] == ids[2]


def test_changing_one_weight_or_buffer_changes_the_digest(digits_model) -> None:
    model = copy.deepcopy(digits_model)
    before = weights_sha256(model)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-6
    assert weights_sha256(model) != before


def test_batch_norm_statistics_count_in_the_digest() -> None:
    """Batch-norm running statistics are buffers, not parameters, and change the outputs: they count too."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    model.train()(torch.rand(8, 3, 8, 8))  # real running statistics
    model.eval()
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    assert buffers  # running_mean and running_var
    before, outputs = weights_sha256(model), model(torch.ones(1, 3, 8, 8))
    with torch.no_grad():
        model[1].running_mean[0] += 1e-3
    assert not torch.equal(model(torch.ones(1, 3, 8, 8)), outputs)  # the statistic changes what the model says
    assert weights_sha256(model) != before


def test_the_bundle_records_the_weights_digest_its_run_id_hashes(digits_bundle, digits_spec, digits_model,
                                                                 digits_class3, small_params) -> None:
    assert digits_bundle.meta.record["weights_sha256"] == weights_sha256(digits_model)  # in run.json
    assert digits_bundle.meta.weights_sha256 == weights_sha256(digits_model)
    flow = NeurFlow(progress=False, **small_params)
    assert flow.run_id(digits_spec, 3, digits_class3.sha256) == digits_bundle.meta.run_id
    # settings of speed and memory only do not change the id; a parameter of the result does
    assert NeurFlow(progress=False, **{**small_params, "batch_size": 7}).run_id(digits_spec, 3, digits_class3.sha256) \
        == digits_bundle.meta.run_id
    assert NeurFlow(progress=False, **{**small_params, "n_exemplars": 3}).run_id(digits_spec, 3, digits_class3.sha256) \
        != digits_bundle.meta.run_id


def _edited(bundle_dir: Path, tmp_path: Path, edit) -> Path:
    out = Path(shutil.copytree(bundle_dir, tmp_path / "edited"))
    run = json.loads((out / "run.json").read_text())
    edit(run)
    (out / "run.json").write_text(json.dumps(run))
    return out


def _drop(path: str):
    def edit(run: dict) -> None:
        *parents, last = path.split(".")
        node = run
        for part in parents:
            node = node[part]
        del node[last]
    return edit


@pytest.mark.parametrize("field", ["layers", "run_id", "weights_sha256", "model.name", "class.index", "images.sha256",
                                   "params.k", "params.max_semantic_groups", "layer_stats", "stage_seconds"])
def test_a_run_json_missing_a_field_is_refused_naming_it(digits_bundle_dir, tmp_path, field: str) -> None:
    broken = _edited(digits_bundle_dir, tmp_path, _drop(field))
    name = field if field != "layer_stats" else "layer_stats.fc.lower"
    with pytest.raises(ArtifactError, match=rf"run.json: field '{name}' is missing") as caught:
        read_bundle(broken)
    assert str(broken / "run.json") in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("layers", "fc", "field 'layers' must be a list"),
    ("layers", ["fc", 3], r"field 'layers\[1\]' must be a string"),
    ("class", {"index": "3", "name": "3"}, "field 'class.index' must be an integer"),
    ("images", {"kept": 2, "sha256": ["a"]}, "must have one entry per kept image"),
    ("params", {"k": 0}, "field 'params.tau' is missing"),
])
def test_a_run_json_field_of_the_wrong_type_is_refused(digits_bundle_dir, tmp_path, field, value, message) -> None:
    broken = _edited(digits_bundle_dir, tmp_path, lambda run: run.__setitem__(field, value))
    with pytest.raises(ArtifactError, match=message):
        read_bundle(broken)


def test_a_bad_param_value_is_refused_naming_params(digits_bundle_dir, tmp_path) -> None:
    broken = _edited(digits_bundle_dir, tmp_path, lambda run: run["params"].__setitem__("k", 0))
    with pytest.raises(ArtifactError, match="field 'params' is not valid .*k must be a positive integer"):
        read_bundle(broken)


def test_a_fresh_run_parses_and_fields_this_release_does_not_read_are_kept(digits_bundle, digits_bundle_dir,
                                                                           tmp_path, small_params) -> None:
    meta = RunMeta.parse(digits_bundle.meta.record)
    assert meta.layers == tuple(digits_bundle.circuit.layers) and meta.images.kept == len(digits_bundle.patches.images)
    assert meta.params.tau == small_params["tau"] and set(meta.layer_stats) == set(meta.layers[:-1])
    extra = _edited(digits_bundle_dir, tmp_path, lambda run: run.__setitem__("note", {"by": "a later release"}))
    assert read_bundle(extra).meta.record["note"] == {"by": "a later release"}


def test_run_json_is_the_records_text_and_reads_back_to_the_same_record(digits_bundle, digits_bundle_dir) -> None:
    """The engine's record is what the bundle holds: run.json is ``RunMeta.to_json`` (its fields in the documented
    order, then ``bundle_format``) and ``RunMeta.from_json`` reads back a record equal to it, text for text."""
    text = (digits_bundle_dir / "run.json").read_text()
    assert text == digits_bundle.meta.to_json()
    assert list(json.loads(text)) == ["run_id", "created_at", "complete", "model", "weights_sha256", "class", "layers",
                                      "params", "images", "layer_stats", "stage_seconds", "versions", "bundle_format"]
    back = RunMeta.from_json(text, "run.json")
    assert back == digits_bundle.meta and back.complete and back.to_json() == text
    keyed = digits_bundle.meta.with_request_key("digits-c3-r0123456789abcdef")
    assert list(keyed.record)[:2] == ["run_id", "request_key"] and keyed.request_key == "digits-c3-r0123456789abcdef"
    assert keyed.run_id == digits_bundle.meta.run_id  # the request key is not part of the run's identity


def test_evaluate_fidelity_on_a_run_json_without_layers_is_one_line(digits_bundle_dir, tmp_path) -> None:
    broken = _edited(digits_bundle_dir, tmp_path, _drop("layers"))
    result = CliRunner().invoke(main, ["evaluate", "fidelity", "--bundle", str(broken), "--out", str(tmp_path / "e"),
                                       "--no-store", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "field 'layers' is missing" in result.output and str(broken / "run.json") in result.output
    assert result.output.count("\n") == 1
