"""The Ward silhouette from one distance matrix gives the former per-count way's clusters, on real activations."""

from __future__ import annotations

import numpy as np
import pytest

from neurflow_graph.engine import groups as groups_module
from neurflow_graph.engine.activations import compute_activations
from neurflow_graph.engine.clustering import ward_silhouette, ward_silhouette_per_count
from neurflow_graph.engine.groups import find_neuron_groups
from neurflow_graph.engine.patches import make_patches


@pytest.fixture(scope="module")
def real_vectors(digits_model, digits_preset, digits_class3):
    """conv2 and conv3 activations of the trained digits CNN on real patches of digit 3 (float32, as the engine's)."""
    patches = make_patches(digits_class3.images[:6])
    acts = compute_activations(digits_model, patches, ["conv3", "conv2"], digits_preset.normalize, 32)
    return acts.values


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
@pytest.mark.parametrize("rows", [40, 300])
def test_ward_silhouette_equals_the_per_count_way_on_real_activations(real_vectors, layer, rows):
    vectors = real_vectors[layer][:rows]
    assert vectors.dtype == np.float32
    for max_clusters in (5, 99):
        new = ward_silhouette(vectors, max_clusters)
        np.testing.assert_array_equal(new, ward_silhouette_per_count(vectors, max_clusters))
        assert 2 <= new.max() + 1 <= min(max_clusters, rows - 1)


def test_tied_merge_heights_are_cut_as_fcluster_cuts_them(real_vectors):
    """Repeated rows merge at height 0 together: fcluster's maxclust cuts include every tied merge at once."""
    vectors = np.repeat(real_vectors["conv3"][:30], 3, axis=0)
    np.testing.assert_array_equal(ward_silhouette(vectors, 99), ward_silhouette_per_count(vectors, 99))


def test_degenerate_inputs_give_one_group(real_vectors):
    row = real_vectors["conv2"][:1]
    assert ward_silhouette(np.repeat(row, 5, axis=0), 10).tolist() == [0] * 5
    assert ward_silhouette(real_vectors["conv2"][:2], 10).tolist() == [0, 0]


def test_find_neuron_groups_is_unchanged(digits_bundle, digits_model, digits_preset, monkeypatch):
    """The real run's neuron groups, recomputed with the former way, are the same groups."""
    layers = list(digits_bundle.circuit.layers)
    acts = compute_activations(digits_model, digits_bundle.patches, layers, digits_preset.normalize,
                               digits_preset.input_size)
    new = find_neuron_groups(digits_bundle.circuit, acts)
    assert sum(1 for g in new.groups if not g.is_root) > 2  # some real clustering happened
    monkeypatch.setattr(groups_module, "ward_silhouette", ward_silhouette_per_count)
    assert find_neuron_groups(digits_bundle.circuit, acts) == new
