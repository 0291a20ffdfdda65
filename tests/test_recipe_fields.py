"""Every recipe field refuses wrong types and out-of-range values in one line, exit 1, before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.recipes import FIELDS, load_recipe

RECIPE = str(Path(__file__).resolve().parents[1] / "ingest" / "digits.toml")
BASE = {"model": {"preset": "digits", "weights": "DIGITS_V1"},
        "images": {"source": "digits", "split": "test", "max_images": 5},
        "run": {"classes": ["3"], "k": 10, "tau": 3, "n_steps": 8, "seed": 0}}

# (section, key, bad value): wrong types and out-of-range values of every field
BAD = [
    ("model", "preset", 3), ("model", "preset", ""), ("model", "weights", 1), ("model", "checkpoint", ["a"]),
    ("model", "layers", "fc"), ("model", "layers", ["fc"]), ("model", "layers", ["fc", 2]),
    ("model", "layouts", ["units"]), ("model", "layouts", {"fc": "sideways"}), ("model", "tokens", "some"),
    ("images", "source", "web"), ("images", "path", 7), ("images", "folder", 1), ("images", "layout", "flat"),
    ("images", "names", "chelsea"), ("images", "names", []), ("images", "augment", -1), ("images", "augment", 1.5),
    ("images", "split", "val"), ("images", "max_images", "sixty"), ("images", "max_images", -1),
    ("images", "max_images", 0), ("images", "max_images", True),
    ("run", "class", 1.5), ("run", "class", -3), ("run", "classes", "3"), ("run", "classes", []),
    ("run", "k", 0), ("run", "k", "50"), ("run", "tau", 0), ("run", "tau", 2.0), ("run", "n_steps", 1),
    ("run", "n_steps", "many"), ("run", "method", "simpson"), ("run", "precision", "fp64"),
    ("run", "tolerance", 0), ("run", "tolerance", "tiny"), ("run", "granularities", "all"),
    ("run", "granularities", [0.5, 2]), ("run", "granularities", []), ("run", "stride_ratio", 0),
    ("run", "stride_ratio", 1.5), ("run", "max_semantic_groups", 1), ("run", "max_neuron_groups", 0),
    ("run", "n_exemplars", "8"), ("run", "seed", "zero"), ("run", "seed", -1), ("run", "seed", 2**40),
    ("run", "batch_size", 0), ("run", "internal_batch_size", 0), ("run", "memory_budget_mb", -5),
    ("run", "memory_budget_mb", "lots"), ("run", "device", 0),
    ("faithfulness", "level", "all"), ("faithfulness", "level", 1), ("faithfulness", "sets", 9),
    ("faithfulness", "sets", "ten"), ("faithfulness", "seed", -1), ("faithfulness", "seed", "zero"),
]


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and true/false read the same in TOML


def write_recipe(path: Path, section: str, key: str, value) -> Path:
    tables = {name: dict(table) for name, table in BASE.items()}
    if key == "class":
        tables["run"].pop("classes")
    tables.setdefault(section, {})[key] = value
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
                            for name, table in tables.items()))
    return path


def test_every_field_is_in_the_table() -> None:
    assert {(s, k) for s, k, _ in BAD} == set(FIELDS)


@pytest.mark.parametrize("section, key, value", BAD, ids=[f"{s}.{k}={v!r}" for s, k, v in BAD])
def test_a_bad_field_is_one_line_naming_field_value_and_what_is_accepted(tmp_path, section, key, value) -> None:
    recipe = write_recipe(tmp_path / "bad.toml", section, key, value)
    result = CliRunner().invoke(main, ["run", str(recipe), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    line = result.output
    accepted = FIELDS[section, key][1]
    assert f"[{section}] {key} = " in line and f"is not accepted; use {accepted}" in line, line
    assert "Traceback" not in line and not (tmp_path / "out").exists()


def test_the_good_base_recipe_loads(tmp_path) -> None:
    recipe = write_recipe(tmp_path / "good.toml", "run", "k", 10)
    assert load_recipe(recipe).images.max_images == 5


@pytest.mark.parametrize("option, value, field", [
    ("--max-images", "-1", "[images] max_images = -1"), ("--max-images", "0", "[images] max_images = 0"),
    ("--k", "0", "[run] k = 0"), ("--tau", "-2", "[run] tau = -2"), ("--seed", "-1", "[run] seed = -1"),
    ("--tolerance", "-1", "[run] tolerance = -1.0"),
])
def test_a_bad_override_is_refused_the_same_way(tmp_path, option, value, field) -> None:
    result = CliRunner().invoke(main, ["run", RECIPE, "--out", str(tmp_path / "out"), option, value, "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"{option}: {field} is not accepted" in result.output
    assert not (tmp_path / "out").exists()


def test_parameters_are_checked_against_the_model_before_any_image_is_read(tmp_path, monkeypatch) -> None:
    """A layer the model lacks and a k the capped images cannot give are refused before the images are read."""
    import neurflow_graph.image_sources as image_sources

    def no_images(*_args, **_kwargs):
        raise AssertionError("images were read")

    monkeypatch.setattr(image_sources, "source_images", no_images)
    out = str(tmp_path / "out")
    bad_layers = write_recipe(tmp_path / "layers.toml", "model", "layers", ["fc", "conv9"])
    result = CliRunner().invoke(main, ["run", str(bad_layers), "--out", out, "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "conv9" in result.output, result.output
    result = CliRunner().invoke(main, ["run", RECIPE, "--out", out, "--max-images", "1", "--k", "1000", "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "k=1000 is larger than the" in result.output and "max_images=1" in result.output
    assert not (tmp_path / "out").exists()


def test_tau_above_a_layer_width_is_capped_with_a_printed_and_recorded_warning(tmp_path) -> None:
    """The README's `--tau 16` on the digits CNN, whose conv1 has 16 channels: conv1 gets tau 15, said and kept."""
    import torch

    from neurflow_graph.bundle.files import read_bundle
    from neurflow_graph.engine.layers import layer_widths
    from neurflow_graph.models.presets import get_preset

    out = tmp_path / "b"
    result = CliRunner().invoke(main, ["run", RECIPE, "--out", str(out), "--tau", "16", "--k", "10", "--steps", "4",
                                       "--max-images", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    preset = get_preset("digits")
    widths = layer_widths(preset.build(), preset.layers, torch.zeros(2, 1, preset.input_size, preset.input_size))
    capped = {name: widths[name] - 1 for name in preset.layers[1:] if widths[name] <= 16}
    assert capped  # the digits CNN has a layer this narrow
    first = result.output.splitlines()[0]
    assert first.startswith("warning: tau=16 is at or above the width of") and "tau_caps" in first
    for name, cap in capped.items():
        assert f"{name} {cap}" in first
    bundle = read_bundle(out)
    assert bundle.meta.tau_caps == capped and bundle.meta.params.tau == 16
    for tr in bundle.circuit.transitions:
        assert tr.core.shape[1] == capped.get(tr.lower, 16)
