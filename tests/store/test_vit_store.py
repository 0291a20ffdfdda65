"""A vision transformer's circuit in the real embedded store: ingested, queried and shown like a CNN's."""

from pathlib import Path

import pytest

from neurflow_graph.bundle.files import read_bundle
from neurflow_graph.query.fetch import fetch_class_circuit
from neurflow_graph.store import connect

from .test_cli_store import SMALL_RUN, invoke

INGEST = Path(__file__).resolve().parents[2] / "ingest"


@pytest.mark.parametrize("recipe, site", [("digits-vit.toml", ""), ("digits-vit-mlp.toml", ".mlp.1")])
def test_digits_vit_circuit_is_ingested_queried_and_shown(data_dir, database_name, tmp_path, recipe, site):
    """Through the residual stream and through the MLP units (whose sub-networks hold the blocks' skip paths)."""
    store = ["--data-dir", data_dir, "--database", database_name]
    result = invoke("ingest", str(INGEST / recipe), "--out", tmp_path / "b", *store, *SMALL_RUN)
    assert result.exit_code == 0, result.output
    assert "(complete: True)" in result.output and "heads.head/g0" in result.output
    bundle = read_bundle(tmp_path / "b" / "3")
    layers = bundle.meta.layers
    assert layers[1].startswith("encoder.layers.encoder_layer_") and layers[1].endswith(site)
    assert bundle.meta.params.method == "gausslegendre_geometric"  # the recipe's rule for layer norms
    with connect(data_dir, database=database_name) as conn:
        circuit = fetch_class_circuit(conn, "digits-vit/3")
    assert circuit.run_id == bundle.meta.run_id
    assert {g.group_id for g in circuit.groups} == {g.group_id for g in bundle.groups.groups}
    # A neuron is a token dimension of a block, stored as a channel is: the same neurons per group.
    assert {g.group_id: len(g.neurons) for g in circuit.groups} == \
        {g.group_id: len(g.neurons) for g in bundle.groups.groups}
    assert len(circuit.edges) > 0
    page = tmp_path / "vit.html"
    shown = invoke("show", "digits-vit/3", "--out", page, *store)
    assert shown.exit_code == 0, shown.output
    html = page.read_text()
    for layer in layers[:-1]:
        assert layer in html
