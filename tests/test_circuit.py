"""Invariants of a real NeurFlow run (digits model, digit 3) and the bundle round trip."""

from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest

from neurflow_graph.bundle.files import read_bundle, write_bundle
from neurflow_graph.engine.pipeline import NeurFlow
from neurflow_graph.errors import ConfigError


def test_root_is_the_class_logit(digits_bundle):
    root = digits_bundle.circuit.transitions[0]
    assert root.layer == "fc" and root.targets.tolist() == [3]
    assert [g.group_id for g in digits_bundle.groups.groups if g.is_root] == ["fc/g0"]


def test_each_layer_targets_are_the_union_of_the_core_neurons_above(digits_bundle):
    transitions = digits_bundle.circuit.transitions
    for above, below in zip(transitions[:-1], transitions[1:], strict=True):
        assert below.targets.tolist() == sorted(set(above.core.ravel().tolist()))
    assert digits_bundle.circuit.leaves.tolist() == sorted(set(transitions[-1].core.ravel().tolist()))


def test_core_sets_have_tau_distinct_neurons_ranked_by_importance(digits_bundle, small_params):
    for tr in digits_bundle.circuit.transitions:
        assert tr.core.shape == (len(tr.targets), small_params["tau"])
        assert all(len(set(row)) == small_params["tau"] for row in tr.core.tolist())
        assert np.all(np.diff(tr.core_scores, axis=1) <= 0)


def test_edge_weights_of_each_semantic_group_sum_to_one_in_absolute_value(digits_bundle):
    for tr in digits_bundle.circuit.transitions:
        sums = defaultdict(float)
        for t, j, w in zip(tr.edge_target, tr.edge_group, tr.edge_weight, strict=True):
            sums[(t, j)] += abs(w)
        assert len(sums) == int(tr.n_semantic_groups.sum())
        np.testing.assert_allclose(list(sums.values()), 1.0, rtol=1e-9)


def test_semantic_groups_partition_each_concept(digits_bundle, small_params):
    for tr in digits_bundle.circuit.transitions:
        assert tr.top_patches.shape[1] == small_params["k"]
        assert tr.semantic_labels.min() == 0 and tr.semantic_labels.max() < 5
        for labels in tr.semantic_labels:
            assert set(labels.tolist()) == set(range(labels.max() + 1))


def test_group_edges_are_sums_of_hyperedge_weights(digits_bundle):
    circuit, groups = digits_bundle.circuit, digits_bundle.groups
    sg_group = {(g.layer, n, j): g.group_id for g in groups.groups for n, j in g.semantic_groups}
    neuron_groups = defaultdict(set)
    for g in groups.groups:
        for n in g.neurons:
            neuron_groups[(g.layer, n)].add(g.group_id)
    expected = defaultdict(float)
    for tr in circuit.transitions[:-1]:
        for t, j, child, w in zip(tr.edge_target, tr.edge_group, tr.edge_child, tr.edge_weight, strict=True):
            for child_group in neuron_groups[(tr.lower, child)]:
                expected[(child_group, sg_group[(tr.layer, tr.targets[t], j)])] += w
    got = {(e.child, e.parent): e.weight for e in groups.edges}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)


def test_every_non_leaf_neuron_belongs_to_a_group_and_exemplars_come_from_the_concept(digits_bundle):
    circuit, groups = digits_bundle.circuit, digits_bundle.groups
    for tr in circuit.transitions:
        members = {n for g in groups.in_layer(tr.layer) for n in g.neurons}
        assert members == set(tr.targets.tolist())
    for g in groups.groups:
        assert set(g.exemplars) <= set(g.patch_ids) and len(g.exemplars) == min(8, len(g.patch_ids))


def test_runs_are_deterministic(digits_bundle, digits_bundle_dir, digits_spec, digits_class3, small_params,
                                tmp_path):
    """Same seed, same CPU: the same run id and byte-identical tables (README: what is reproducible)."""
    again = NeurFlow(progress=False, **small_params).run(
        digits_spec, 3, digits_class3.images, digits_class3.sha256, "3"
    )
    assert again.meta.run_id == digits_bundle.meta.run_id
    written = write_bundle(again, tmp_path / "again")
    tables = sorted(p.name for p in digits_bundle_dir.glob("*.parquet"))
    assert tables == sorted(p.name for p in written.glob("*.parquet")) and len(tables) >= 6
    for name in tables + [f"thumbnails/{p.name}" for p in (digits_bundle_dir / "thumbnails").iterdir()]:
        assert (written / name).read_bytes() == (digits_bundle_dir / name).read_bytes(), name
    assert again.groups == digits_bundle.groups
    for a, b in zip(again.circuit.transitions, digits_bundle.circuit.transitions, strict=True):
        np.testing.assert_array_equal(a.core, b.core)
        np.testing.assert_array_equal(a.edge_weight, b.edge_weight)


def test_bundle_round_trips_to_the_same_objects(digits_bundle, digits_bundle_dir):
    back = read_bundle(digits_bundle_dir)
    assert back.groups == digits_bundle.groups
    assert back.meta.run_id == digits_bundle.meta.run_id
    for a, b in zip(back.circuit.transitions, digits_bundle.circuit.transitions, strict=True):
        for field in ("targets", "top_patches", "core", "semantic_labels", "edge_target", "edge_group",
                      "edge_child", "edge_rank"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        np.testing.assert_allclose(a.edge_weight, b.edge_weight)
        np.testing.assert_allclose(a.core_scores, b.core_scores)
    np.testing.assert_array_equal(back.patches.boxes, digits_bundle.patches.boxes)
    assert np.abs(back.patches.images.numpy() - digits_bundle.patches.images.numpy()).max() <= 0.5 / 255 + 1e-6
    edges = pq.read_table(digits_bundle_dir / "hyperedges.parquet")
    assert edges.num_rows == sum(len(tr.edge_child) for tr in digits_bundle.circuit.transitions)
    for g in digits_bundle.groups.groups:
        for p in g.exemplars:
            assert (digits_bundle_dir / "thumbnails" / f"p{p}.png").is_file()


def test_k_larger_than_the_patches_is_a_clear_error(digits_spec, digits_class3):
    with pytest.raises(ConfigError, match="k=1000 is larger than the 59 patches"):
        NeurFlow(progress=False, k=1000).run(digits_spec, 3, digits_class3.images[:1], digits_class3.sha256[:1])


def test_class_index_out_of_range_is_a_clear_error(digits_spec, digits_class3):
    with pytest.raises(ConfigError, match="class index 10 is out of range; the model has 10 classes"):
        NeurFlow(progress=False).run(digits_spec, 10, digits_class3.images, digits_class3.sha256)


def test_tau_at_or_above_a_layer_width_is_capped_there(digits_spec, digits_class3):
    """conv1 has 16 channels: tau=16 would make every one of them core, so conv1 gets width - 1, recorded."""
    from neurflow_graph.engine.layers import layer_widths
    from neurflow_graph.engine.pipeline import tau_caps

    images = digits_class3.images[:3]
    widths = layer_widths(digits_spec.model, digits_spec.layers, digits_spec.normalize(images[:2]))
    expected = {name: widths[name] - 1 for name in digits_spec.layers[1:] if widths[name] <= 16}
    assert tau_caps(16, widths, digits_spec.layers[1:]) == expected and expected
    bundle = NeurFlow(progress=False, k=10, tau=16, n_steps=4).run(digits_spec, 3, images, digits_class3.sha256[:3])
    assert bundle.meta.tau_caps == expected
    for tr in bundle.circuit.transitions:
        assert tr.core.shape[1] == expected.get(tr.lower, 16)
    with pytest.raises(ConfigError, match="has 1 neuron, so no core set can leave one out"):
        tau_caps(4, {"a": 1}, ["a"])
