"""`debug` against the real embedded store: groups read from the graph, Intervention nodes written back, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from neurflow_graph.cli.query import debug
from neurflow_graph.debugging import debug_images, layer_groups_from_bundle, store_interventions
from neurflow_graph.query import fetch_interventions
from neurflow_graph.store import write_run_graph
from neurflow_graph.store.connection import Connection

RECIPE = str(Path(__file__).resolve().parents[2] / "ingest" / "digits.toml")


def _counts(conn: Connection) -> tuple[dict, dict]:
    nodes = {r["label"]: r["count"] for r in conn.run("node_counts")}
    rels = {r["type"]: r["count"] for r in conn.run("relationship_counts")}
    return nodes, rels


def test_debug_command_stores_interventions_once(conn: Connection, data_dir: Path, digits_bundle_dir: Path,
                                                 tmp_path: Path) -> None:
    run_id = write_run_graph(conn.driver, conn.database, digits_bundle_dir).run_id
    args = ["3", "--recipe", RECIPE, "--seeds", "3", "--top", "4", "--max-images", "40", "--device", "cpu",
            "--out", str(tmp_path / "pages"), "--data-dir", str(data_dir), "--database", conn.database]
    result = CliRunner().invoke(debug, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"class digits/3, run {run_id}, layer conv3" in result.output
    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    stored = fetch_interventions(conn, "3")
    assert {i.group_id for i in stored} == {g.group_id for g in groups}
    report = json.loads((tmp_path / "pages" / "report.json").read_text())
    for item in stored:
        props = item.properties
        (g,) = [g for g in report["groups"] if g["group_id"] == item.group_id]
        assert props["prob_drop"] == g["mean_prob_drop"] and props["seeds"] == 3
        assert props["random_prob_drops"] == g["random_prob_drop"] and props["top_images"] == g["top_images"]
        assert g["intervention_id"] == item.id and item.id.startswith(f"{run_id}/{item.group_id}/mask-")
    before = _counts(conn)
    again = CliRunner().invoke(debug, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert _counts(conn) == before  # MERGE by a deterministic id: a re-run replaces, never adds
    assert before[0]["Intervention"] == len(groups) and before[1]["MASKS"] == len(groups)
    for name in ("index.html", "report.json", "group-conv3-g0.html", "group-conv3-g0.png"):
        assert (tmp_path / "pages" / name).is_file()
    write_run_graph(conn.driver, conn.database, digits_bundle_dir)  # re-ingest rewrites the groups ...
    assert "Intervention" not in _counts(conn)[0]  # ... and takes their (now stale) results with them
    assert fetch_interventions(conn, "3") == []


def test_debug_command_errors_are_one_line(conn: Connection, data_dir: Path, digits_bundle_dir: Path,
                                           tmp_path: Path) -> None:
    write_run_graph(conn.driver, conn.database, digits_bundle_dir)
    base = ["--recipe", RECIPE, "--out", str(tmp_path), "--data-dir", str(data_dir), "--database", conn.database]
    for args, message in ((["7"], "class '7' of model 'digits' is not in the store; classes in the store: digits/3"),
                          (["3", "--layer", "conv1"], "layer 'conv1' has no neuron groups in run")):
        result = CliRunner().invoke(debug, [*args, *base], catch_exceptions=False)
        assert result.exit_code == 1 and message in result.output, result.output
        assert result.output.count("\n") == 1


def test_other_image_sets_get_other_interventions(conn: Connection, digits_bundle_dir: Path, digits_model,
                                                  digits_preset, digits_class3) -> None:
    write_run_graph(conn.driver, conn.database, digits_bundle_dir)
    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images = digits_class3
    first = debug_images(digits_model, images.images, groups, 3, normalize=digits_preset.normalize, seeds=2,
                         sha256=images.sha256, run_id=groups[0].run_id)
    half = debug_images(digits_model, images.images[:6], groups, 3, normalize=digits_preset.normalize, seeds=2,
                        sha256=images.sha256[:6], run_id=groups[0].run_id)
    ids = store_interventions(conn, first, "digits/3", "twelve")
    assert store_interventions(conn, first, "digits/3", "twelve") == ids
    other = store_interventions(conn, half, "digits/3", "six")
    assert not set(ids) & set(other)
    assert len(fetch_interventions(conn, "digits/3")) == 2 * len(groups)
