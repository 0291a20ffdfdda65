"""``find_neuron_groups`` with the Ward silhouettes of every cluster count from one distance matrix (new) against
one ``silhouette_score`` per count (old, ``clustering.ward_silhouette_per_count``), side by side in one run.

    python benchmarks/clustering.py --quick   # n = 1000 semantic groups (about a minute on one core)
    python benchmarks/clustering.py           # n = 1000 and 3000
    python benchmarks/clustering.py --tiny    # n = 200: seconds, what the test runs so this script cannot rot

Each size is a circuit whose second layer holds n semantic groups (n/5 targets with 5 groups each, k = 50 patches
per target) over 1024 neurons, ResNet50 layer3's width: patch activations are non-negative mixtures of 60 sparse
concept directions plus noise, and each semantic group holds patches of one concept, so the groups cluster as
real ones do. ``find_neuron_groups`` runs with the
default 100 groups at most, both ways. Prints per size ``find_neuron_groups n=N: old X s, new Y s (Zx),
identical groups: yes|no``; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neurflow_graph.engine import groups as groups_module
from neurflow_graph.engine.activations import Activations
from neurflow_graph.engine.circuit import Circuit, Transition
from neurflow_graph.engine.clustering import ward_silhouette, ward_silhouette_per_count
from neurflow_graph.engine.groups import find_neuron_groups

WIDTH, K, GROUPS_PER_TARGET, CONCEPTS = 1024, 50, 5, 60
SIZES = {"tiny": (200,), "quick": (1000,), "full": (1000, 3000)}


def synthetic_circuit(n_groups: int, seed: int = 0) -> tuple[Circuit, Activations]:
    """A root transition and one whose targets hold ``n_groups`` semantic groups, and the patch activations."""
    rng = np.random.default_rng(seed)
    n_targets = n_groups // GROUPS_PER_TARGET
    n_patches = max(4 * n_targets, 500)
    concepts = np.maximum(rng.normal(size=(CONCEPTS, WIDTH)), 0) * (rng.random((CONCEPTS, WIDTH)) < 0.1)
    mix = rng.dirichlet(np.full(CONCEPTS, 0.1), size=n_patches)
    lower = (mix @ concepts + 0.05 * np.abs(rng.normal(size=(n_patches, WIDTH)))).astype(np.float32)
    root_lower = rng.random((n_patches, 8)).astype(np.float32)

    dominant = mix.argmax(axis=1)
    by_concept = [np.flatnonzero(dominant == c) for c in range(CONCEPTS)]
    by_concept = [rows if len(rows) else np.arange(n_patches) for rows in by_concept]

    def transition(layer, lower_name, targets, n_groups_each):
        # Each semantic group holds patches of one concept, as a target's top patches split by what they show.
        t, size = len(targets), K // n_groups_each
        top = np.stack([np.concatenate([rng.choice(by_concept[c], size) for c in rng.integers(0, CONCEPTS,
                                                                                            n_groups_each)])
                        for _ in range(t)])
        labels = np.tile(np.repeat(np.arange(n_groups_each), size), (t, 1))
        none = np.zeros(0, dtype=np.int64)
        return Transition(
            layer=layer, lower=lower_name, targets=np.asarray(targets), top_patches=top, core=np.zeros((t, 1), int),
            core_scores=np.zeros((t, 1)), semantic_labels=labels, edge_target=none, edge_group=none,
            edge_child=none, edge_rank=none, edge_score=np.zeros(0), edge_weight=np.zeros(0),
            activation_max=np.ones(t), sg_activation=np.ones((t, n_groups_each)))

    first = transition("logit", "mid", [0], 1)
    second = transition("mid", "low", np.arange(n_targets), GROUPS_PER_TARGET)
    circuit = Circuit(layers=("logit", "mid", "low"), class_index=0, transitions=(first, second),
                      leaf_top_patches=np.zeros((0, K), int), leaf_activation_max=np.zeros(0))
    return circuit, Activations({"mid": root_lower, "low": lower})


def timed_groups(circuit: Circuit, activations: Activations, clustering) -> tuple[object, float]:
    """``find_neuron_groups`` with ``clustering`` as its Ward silhouette, and its seconds."""
    saved = groups_module.ward_silhouette
    groups_module.ward_silhouette = clustering
    try:
        started = time.perf_counter()
        result = find_neuron_groups(circuit, activations)
        return result, time.perf_counter() - started
    finally:
        groups_module.ward_silhouette = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_const", const="tiny", dest="size")
    size.add_argument("--quick", action="store_const", const="quick", dest="size")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = []
    for n in SIZES[args.size or "full"]:
        circuit, activations = synthetic_circuit(n)
        new, new_s = timed_groups(circuit, activations, ward_silhouette)
        old, old_s = timed_groups(circuit, activations, ward_silhouette_per_count)
        same = new == old
        clusters = sum(1 for g in new.groups if g.layer == "mid")
        print(f"find_neuron_groups n={n}: old {old_s:.2f} s, new {new_s:.2f} s ({old_s / new_s:.1f}x), "
              f"identical groups: {'yes' if same else 'no'} ({clusters} groups)", flush=True)
        figures.append({"n": n, "old_s": old_s, "new_s": new_s, "identical": bool(same), "groups": clusters})
    if args.json:
        args.json.write_text(json.dumps({"sizes": figures, "width": WIDTH}, indent=2))


if __name__ == "__main__":
    main()
