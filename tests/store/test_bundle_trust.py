"""Bundles are data from disk: a tampered run.json is refused in one line, writes nothing, and never changes what the
graph says about other runs; loading the honest bundle again gives the graph of a clean load."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.engine.meta import RunMeta, recomputed_run_id
from neurflow_graph.errors import ArtifactError
from neurflow_graph.store import connect, read_bundle_tables, write_run_graph
from neurflow_graph.store.connection import Connection

VOLATILE = {"ingested_at", "completed_at"}  # when a write happened, not what the graph says


def graph(conn: Connection) -> tuple[Counter, Counter]:
    """The whole graph as multisets of (labels, properties) and (type, start, end, properties), times left out."""
    def frozen(props: dict) -> str:
        return json.dumps({k: v for k, v in props.items() if k not in VOLATILE}, sort_keys=True, default=str)

    nodes = Counter((tuple(sorted(r["labels"])), frozen(r["props"])) for r in conn.run("graph_nodes"))
    rels = Counter((r["type"], r["start"], r["end"], frozen(r["props"])) for r in conn.run("graph_relationships"))
    return nodes, rels


def edited(source: Path, target: Path, edit) -> Path:
    out = Path(shutil.copytree(source, target))
    run = json.loads((out / "run.json").read_text())
    edit(run)
    (out / "run.json").write_text(json.dumps(run))
    return out


def load(bundle: Path, data_dir: Path, database: str):
    return CliRunner().invoke(main, ["load", str(bundle), "--data-dir", str(data_dir), "--database", database,
                                     "--quiet"])


def test_tampered_bundles_are_refused_and_the_honest_one_converges_to_a_clean_load(
        data_dir: Path, database_name: str, digits_bundle_dir: Path, tmp_path: Path) -> None:
    honest = Path(shutil.copytree(digits_bundle_dir, tmp_path / "honest"))
    run = json.loads((honest / "run.json").read_text())
    assert recomputed_run_id(run) == run["run_id"]  # the honest bundle hashes to its own id
    with connect(data_dir, database=database_name + "_clean") as clean:
        assert load(honest, data_dir, clean.database).exit_code == 0
        expected = graph(clean)

    tampered = {
        "a run_id its content does not hash to": (edited(honest, tmp_path / "wrong-id", lambda r: r.update(
            run_id=r["run_id"][:-4] + "0000")), "is not what its content hashes to"),
        "the existing run id with another model name": (edited(honest, tmp_path / "other-model", lambda r: r[
            "model"].update(name="evil")), "is not what its content hashes to"),
        "the existing run id with another class name": (edited(honest, tmp_path / "other-class", lambda r: r[
            "class"].update(name="not-three")), "a run never renames a node other runs share"),
    }
    with connect(data_dir, database=database_name) as conn:
        assert load(honest, data_dir, conn.database).exit_code == 0
        for what, (bundle, says) in tampered.items():
            before = graph(conn)
            result = load(bundle, data_dir, conn.database)
            assert result.exit_code == 1, (what, result.output)
            assert result.output.count("\n") == 1 and says in result.output, (what, result.output)
            assert graph(conn) == before, what  # nothing written
        assert load(honest, data_dir, conn.database).exit_code == 0
        assert graph(conn) == expected


def test_a_bundle_that_renames_a_shared_node_is_refused_even_with_a_consistent_run_id(
        conn: Connection, digits_bundle_dir: Path, tmp_path: Path) -> None:
    """An edit that recomputes the run id (another model preset, another class count) still may not rename the
    shared Model; a neuron id that does not match its layer and channel may not rename a shared Neuron."""
    write_run_graph(conn.driver, conn.database, digits_bundle_dir)
    before = graph(conn)

    def renamed_model(r: dict) -> None:
        r["model"]["num_classes"] = 11
        r["run_id"] = recomputed_run_id(r)

    bundle = edited(digits_bundle_dir, tmp_path / "eleven", renamed_model)
    with pytest.raises(ArtifactError, match="gives Model 'digits' num_classes 11, the store has 10") as info:
        write_run_graph(conn.driver, conn.database, bundle)
    assert "\n" not in str(info.value) and graph(conn) == before

    tables = read_bundle_tables(digits_bundle_dir)
    neurons = tables.neurons
    ids_column = neurons.column("neuron_id").to_pylist()
    ids_column[0], ids_column[1] = ids_column[1], ids_column[0]
    swapped = neurons.set_column(neurons.schema.get_field_index("neuron_id"), "neuron_id", [ids_column])
    with pytest.raises(ArtifactError, match="never renames a shared Neuron"):
        write_run_graph(conn.driver, conn.database, dataclasses.replace(tables, neurons=swapped))
    assert graph(conn) == before


def test_writing_a_run_again_replaces_its_class_and_model_links(conn: Connection, digits_bundle_dir: Path) -> None:
    """A run stored under another class (as an older release could leave it) is linked to its own class alone once
    written again: the writer replaces the FOR_CLASS/OF_MODEL relationships a run owns."""
    tables = read_bundle_tables(digits_bundle_dir)
    run = tables.meta.record
    elsewhere = {**run, "class": {**run["class"], "index": run["class"]["index"] + 1, "name": "elsewhere"}}
    write_run_graph(conn.driver, conn.database, dataclasses.replace(tables, meta=RunMeta.parse(elsewhere)))
    write_run_graph(conn.driver, conn.database, tables)
    links = [(r["type"], r["end"]) for r in conn.run("graph_relationships")
             if r["start"] == tables.run_id and r["type"] in ("FOR_CLASS", "OF_MODEL")]
    assert sorted(links) == [("FOR_CLASS", f"{tables.model_name}/{run['class']['index']}"),
                             ("OF_MODEL", tables.model_name)]
