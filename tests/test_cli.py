"""The command line: exit codes, one-line errors and a real (small) digits run."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main

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
        ('[model]\npreset = "digits"\n[images]\nsource = "web"\n[run]\nclass = "3"\n',
         '[images] source = "web" is not accepted; use one of digits, folder, skimage'),
        ('[model]\npreset = "digits"\n[images]\nsource = "digits"\n[run]\nclass = "3"\nk = 0\n',
         "[run] k = 0 is not accepted; use an integer >= 1"),
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


@pytest.fixture
def flat_digits(tmp_path, digits_model, digits_preset):
    """A flat folder of real digit PNGs: threes and a few sevens (mostly not predicted as 3), plus a corrupt file."""
    import torch
    from PIL import Image

    from neurflow_graph.models.digits import digits_images

    folder = tmp_path / "flat"
    folder.mkdir()
    threes, sevens = digits_images(3)[0][:4], digits_images(7)[0][:2]
    for i, image in enumerate(torch.cat([threes, sevens])):
        Image.fromarray((image[0].numpy() * 255).round().astype("uint8")).save(folder / f"d{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_flat_images_folder_runs_and_counts_the_corrupt_file(tmp_path, flat_digits):
    import json

    out = tmp_path / "b"
    with pytest.warns(UserWarning, match="broken.png"):
        result = invoke("run", RECIPE, "--images", str(flat_digits), "--class", "3", "--out", str(out),
                        *SMALL_RUN[:6], "--max-images", "6", "--quiet")
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())["images"]
    assert run["unreadable"] == [str(flat_digits / "broken.png")]
    assert run["kept"] + run["dropped"] == 6 and {Path(s).parent for s in run["sources"]} == {flat_digits}
    assert (f"kept {run['kept']} images predicted as the class, dropped {run['dropped']}, skipped 1 unreadable "
            "(broken.png)") in result.output

    several = invoke("run", RECIPE, "--images", str(flat_digits), "--class", "3", "--class", "7",
                     "--out", str(tmp_path / "c"), *SMALL_RUN)
    assert several.exit_code == 1 and several.output.count("\n") == 1
    assert "holds images directly, not a subfolder per class" in several.output and "pass one --class" in several.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = invoke("run", RECIPE, "--images", str(empty), "--out", str(tmp_path / "d"), *SMALL_RUN)
    assert none.exit_code == 1 and none.output.count("\n") == 1
    assert "no subfolder '3'" in none.output and "no subfolders and no images" in none.output
    assert "pass one of these" not in none.output


def test_class_folder_prefers_the_class_subfolder_then_a_flat_folder(tmp_path, flat_digits):
    from neurflow_graph.image_sources import class_folder
    from neurflow_graph.recipes import load_recipe

    recipe = load_recipe(RECIPE)
    assert class_folder(recipe.with_overrides(images=flat_digits).images, "3") is None  # flat: the folder itself
    (flat_digits / "3").mkdir()
    assert class_folder(recipe.with_overrides(images=flat_digits).images, "3") == "3"  # a class subfolder wins
    assert class_folder(recipe.with_overrides(images=tmp_path / "nowhere").images, "3") == "3"  # its loader says why


def test_class_options_share_one_grammar_and_batch_options_name_their_fields():
    """`--class`, `--classes` (ingest, evaluate): repeat or comma-separate; `--batch-size` sets `batch_size` and
    `--internal-batch-size` sets `internal_batch_size`, as the recipe names them."""
    from neurflow_graph.cli.common import class_names
    from neurflow_graph.cli.main import load_recipe_with

    assert class_names(("3,5", " cat ", ",")) == ("3", "5", "cat")
    recipe = load_recipe_with(RECIPE, {"classes": ("1,2", "7"), "batch_size": 8, "internal_batch_size": 96})
    assert recipe.classes == ("1", "2", "7")
    assert (recipe.params.batch_size, recipe.params.internal_batch_size) == (8, 96)
    ingest_help = CliRunner().invoke(main, ["ingest", "--help"]).output
    assert "--internal-batch-size" in ingest_help and "--batch-size" in ingest_help
