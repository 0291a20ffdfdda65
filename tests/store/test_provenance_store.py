"""Provenance against the real embedded store: retrained weights are a new run, a bad run.json writes nothing,
and `debug` scores the images the run was computed on."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from click.testing import CliRunner
from PIL import Image

from neurflow_graph.cli.main import main
from neurflow_graph.engine.pipeline import weights_sha256
from neurflow_graph.query import fetch_run_info
from neurflow_graph.store.connection import Connection

RECIPE = str(Path(__file__).resolve().parents[2] / "ingest" / "digits.toml")
SMALL_RUN = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "4", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _run_id(output: str) -> str:
    (found,) = set(re.findall(r"; run (\S+)", output))
    return found


def _node_counts(conn: Connection) -> dict:
    return {r["label"]: r["count"] for r in conn.run("node_counts")}


def test_retrained_checkpoint_at_the_same_path_is_a_new_run_and_ingest_recomputes(
        conn: Connection, data_dir: Path, digits_model, tmp_path: Path) -> None:
    checkpoint = tmp_path / "digits.pt"
    torch.save(digits_model.state_dict(), checkpoint)
    recipe = tmp_path / "mine.toml"
    recipe.write_text(f'[model]\npreset = "digits"\ncheckpoint = "{checkpoint}"\n[images]\nsource = "digits"\n'
                      '[run]\nclass = "3"\n')
    store = ["--data-dir", data_dir, "--database", conn.database, "--out", tmp_path / "b"]
    first = invoke("ingest", recipe, *store, *SMALL_RUN)
    assert first.exit_code == 0 and "wrote" in first.output, first.output
    again = invoke("ingest", recipe, *store, *SMALL_RUN)
    assert "already complete in the store; skipped" in again.output and _run_id(again.output) == _run_id(first.output)

    state = digits_model.state_dict()
    retrained = {name: (t + 1e-4 if t.is_floating_point() else t) for name, t in state.items()}
    torch.save(retrained, checkpoint)  # same path, other weights
    third = invoke("ingest", recipe, *store, *SMALL_RUN)
    assert third.exit_code == 0, third.output
    assert "skipped" not in third.output and "wrote" in third.output  # recomputed, not the old circuit served
    assert _run_id(third.output) != _run_id(first.output)
    model = type(digits_model)()
    for output, weights in ((first.output, state), (third.output, retrained)):
        model.load_state_dict(weights)
        info = fetch_run_info(conn, _run_id(output))
        assert info.properties["weights_sha256"] == weights_sha256(model) == info.run_json["weights_sha256"]

    torch.save(state, checkpoint)  # the old weights back: the new run's bundle is not theirs
    evaluated = invoke("evaluate", "fidelity", "--bundle", tmp_path / "b" / "3", "--out", tmp_path / "e",
                       "--no-store", "--quiet")
    assert evaluated.exit_code == 1 and evaluated.output.count("\n") == 1, evaluated.output
    assert f"are not run {_run_id(third.output)}'s" in evaluated.output
    debugged = invoke("debug", "3", "--recipe", recipe, "--run-id", _run_id(third.output), "--out", tmp_path / "d",
                      "--data-dir", data_dir, "--database", conn.database)
    assert debugged.exit_code == 1 and debugged.output.count("\n") == 1, debugged.output
    assert f"are not those of run {_run_id(third.output)}" in debugged.output


def test_load_of_a_run_json_without_layers_writes_nothing(conn: Connection, data_dir: Path, digits_bundle_dir: Path,
                                                          tmp_path: Path) -> None:
    good = Path(shutil.copytree(digits_bundle_dir, tmp_path / "good"))
    broken = Path(shutil.copytree(digits_bundle_dir, tmp_path / "broken"))
    run = json.loads((broken / "run.json").read_text())
    del run["layers"]
    (broken / "run.json").write_text(json.dumps(run))
    before = _node_counts(conn)
    result = invoke("load", good, broken, "--data-dir", data_dir, "--database", conn.database, "--quiet")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "field 'layers' is missing" in result.output, result.output
    assert str(broken / "run.json") in result.output
    assert _node_counts(conn) == before  # not even the good bundle listed before it


def test_debug_defaults_to_the_images_the_run_was_computed_on(conn: Connection, data_dir: Path,
                                                              tmp_path: Path) -> None:
    from neurflow_graph.models.digits import digits_images

    images, _ = digits_images(3, split="train")  # not the recipe's default (the test split)
    folder = tmp_path / "photos" / "3"
    folder.mkdir(parents=True)
    for i, image in enumerate(images[:12]):
        Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy()).save(folder / f"train-{i}.png")
    store = ["--data-dir", data_dir, "--database", conn.database]
    made = invoke("ingest", RECIPE, "--images", folder.parent, "--class", "3", "--out", tmp_path / "b", *store,
                  *SMALL_RUN)
    assert made.exit_code == 0, made.output
    run = fetch_run_info(conn, _run_id(made.output)).run_json
    assert run["images"]["source"]["source"] == "folder"

    debug = ["debug", "3", "--recipe", RECIPE, "--seeds", "2", "--device", "cpu", *store]
    result = invoke(*debug, "--out", tmp_path / "pages")
    assert result.exit_code == 0, result.output
    assert f"the {run['images']['kept']} images run {run['run_id']} was computed on (from its folder source)" \
        in result.output
    report = json.loads((tmp_path / "pages" / "report.json").read_text())
    assert report["sources"] == run["images"]["sources"] and report["run_id"] == run["run_id"]

    shutil.rmtree(folder.parent)  # the source is gone: the bundle's copies of the same images are used
    again = invoke(*debug, "--out", tmp_path / "pages2")
    assert again.exit_code == 0, again.output
    assert "8-bit copies from its bundle" in again.output
    report = json.loads((tmp_path / "pages2" / "report.json").read_text())
    assert report["sources"] == run["images"]["sources"]

    shutil.rmtree(tmp_path / "b")  # neither the source nor the bundle: the recipe's images
    last = invoke(*debug, "--out", tmp_path / "pages3")
    assert last.exit_code == 0, last.output
    assert "digits test images predicted as class 3" in last.output
