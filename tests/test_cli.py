"""The command line: exit codes, one-line errors and a real (small) digits run."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from neurflow_graph.cli import main

RECIPE = str(Path(__file__).resolve().parents[1] / "ingest" / "digits.toml")
SMALL_RUN = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "3", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_writes_a_bundle_and_prints_a_summary(tmp_path):
    result = invoke("run", RECIPE, "--out", str(tmp_path / "b"), *SMALL_RUN)
    assert result.exit_code == 0, result.output
    assert "kept 3 images predicted as the class" in result.output
    assert "(leaves)" in result.output and "stages:" in result.output
    for table in ("patches", "neurons", "semantic_groups", "hyperedges", "neuron_groups", "group_edges"):
        assert pq.read_table(tmp_path / "b" / f"{table}.parquet").num_rows > 0


def test_all_shipped_recipes_validate():
    from neurflow_graph.recipes import load_recipe

    recipes = sorted((Path(RECIPE).parent).glob("*.toml"))
    assert {r.stem for r in recipes} >= {"digits", "efficientnet-lite0", "resnet50-imagenet", "googlenet-imagenet"}
    for path in recipes:
        load_recipe(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[model]\npreset = "digits"\n[images]\nsource = "digits"\n[run]\nclass = "3"\ntaus = 3\n',
         "unknown key 'taus' in [run] (did you mean 'tau'?)"),
        ('[model]\npreset = "digits"\n[images]\nsource = "web"\n[run]\nclass = "3"\n', "source must be one of"),
        ('[model]\npreset = "digits"\n[images]\nsource = "digits"\n[run]\nclass = "3"\nk = 0\n',
         "k must be a positive integer"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_bad_recipes_are_one_line_errors(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    result = invoke("run", str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1


def test_unknown_class_and_unknown_preset_and_missing_folder(tmp_path):
    result = invoke("run", RECIPE, "--out", str(tmp_path / "o"), "--class", "three")
    assert result.exit_code == 1 and "unknown class 'three'" in result.output
    result = invoke("run", RECIPE, "--out", str(tmp_path / "o"), "--class", "12")
    assert result.exit_code == 1 and "out of range" in result.output
    result = invoke("run", RECIPE, "--out", str(tmp_path / "o"), "--images", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "nowhere" in result.output
    assert not (tmp_path / "o").exists()


def test_steps_option_rejects_garbage(tmp_path):
    result = CliRunner().invoke(main, ["run", RECIPE, "--out", str(tmp_path / "o"), "--steps", "many"])
    assert result.exit_code != 0 and "expected an integer >= 2 or 'auto'" in result.output
