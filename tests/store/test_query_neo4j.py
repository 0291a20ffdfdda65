"""The query library gives the same answers on a real Neo4j 5 as on the embedded store (skipped without Docker)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow_graph.store import connect, write_run_graph
from neurflow_graph.store.connection import Connection


@pytest.fixture(scope="module")
def both(request: pytest.FixtureRequest) -> Iterator[tuple[Connection, Connection]]:
    """(embedded, neo4j) connections holding the same two runs (digits 3 and 5)."""
    neo4j_env = request.getfixturevalue("neo4j_env")
    data_dir = request.getfixturevalue("data_dir")
    bundles = (request.getfixturevalue("digits_bundle_dir"), request.getfixturevalue("digits_bundle_dirs")(5))
    with pytest.MonkeyPatch.context() as mp:
        for key in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "NEURFLOW_GRAPH_DATABASE"):
            mp.delenv(key, raising=False)
        with connect(data_dir, database="q_neo4j_twin") as embedded:
            for key, value in neo4j_env.items():
                mp.setenv(key, value)
            with connect() as neo4j:
                for conn in (embedded, neo4j):
                    for path in bundles:
                        write_run_graph(conn.driver, conn.database, path)
                yield embedded, neo4j


def _norm(value):
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k not in ("ingested_at", "completed_at")}
    return value


def _rows(conn: Connection, name: str, **params) -> list[str]:
    from neurflow_graph.query import run_query

    return sorted(json.dumps(_norm(r), sort_keys=True) for r in run_query(conn, name, **params))


def test_read_queries_agree(both: tuple[Connection, Connection], digits_bundle_dir: Path) -> None:
    embedded, neo4j = both
    run3 = json.loads((digits_bundle_dir / "run.json").read_text())["run_id"]
    cases = [
        ("list_classes", {}), ("circuit_edges", {"class_id": "digits/3"}),
        ("circuit_edges", {"class_id": "digits/3", "top_n": 1}), ("circuit_groups", {"class_id": "digits/5"}),
        ("bias_paths", {"class_id": "digits/3", "limit": 1000}),
        ("bias_paths", {"class_id": "digits/3", "source": "digits/conv2/14", "min_weight": 0.1}),
        ("shared_groups", {"min_jaccard": 0.0}), ("shared_groups", {"min_jaccard": 0.0, "layer": "digits/conv2"}),
        ("shared_neurons", {"layer": "conv2", "min_classes": 1}), ("neuron_roles", {"neuron_id": "digits/conv2/2"}),
        ("group_exemplars", {"group_id": f"{run3}/conv3/g0"}), ("layer_groups", {"class_id": "digits/3",
                                                                              "layer": "conv3"}),
        ("compare_run_groups", {"run_a": run3, "run_b": run3}), ("compare_run_edges", {"run_a": run3, "run_b": run3}),
    ]
    for name, params in cases:
        assert _rows(embedded, name, **params) == _rows(neo4j, name, **params), name


def test_interventions_write_on_neo4j(both: tuple[Connection, Connection], digits_bundle_dir: Path,
                                      digits_model, digits_preset, digits_class3) -> None:
    from neurflow_graph.debugging import debug_images, layer_groups_from_bundle, store_interventions
    from neurflow_graph.query import fetch_interventions

    _, neo4j = both
    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    result = debug_images(digits_model, digits_class3.images, groups, 3, normalize=digits_preset.normalize,
                          seeds=2, sha256=digits_class3.sha256)
    ids = store_interventions(neo4j, result, "digits/3", "twelve")
    assert store_interventions(neo4j, result, "digits/3", "twelve") == ids
    assert sorted(i.id for i in fetch_interventions(neo4j, "digits/3")) == sorted(ids)
