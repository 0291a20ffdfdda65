"""Steps 2-5: the core concept neuron hypertree of one class, grown from the class logit downwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from neurflow_graph.engine.activations import Activations
from neurflow_graph.engine.attribution import Attribution
from neurflow_graph.engine.clustering import ward_silhouette


@dataclass(frozen=True)
class Transition:
    """One level of the hypertree: ``targets`` in ``layer``, their core neurons in ``lower``.

    Arrays are indexed by target row t; hyper-edges are flat arrays of length E, one per
    (target, semantic group, core neuron).
    """

    layer: str
    lower: str
    targets: np.ndarray  # T, neuron indices in ``layer``
    top_patches: np.ndarray  # T×k, the concept V_a of each target, best first
    core: np.ndarray  # T×tau, core neurons in ``lower``, most important first
    core_scores: np.ndarray  # T×tau, mean |IG| over the k patches
    semantic_labels: np.ndarray  # T×k, semantic group of each top patch
    edge_target: np.ndarray  # E, target row
    edge_group: np.ndarray  # E, semantic group index j of that target
    edge_child: np.ndarray  # E, core neuron in ``lower``
    edge_rank: np.ndarray  # E, rank of the child among the target's core neurons
    edge_score: np.ndarray  # E, signed mean IG over the semantic group's patches
    edge_weight: np.ndarray  # E, eq. 4: score / sum |score| over the target's core neurons
    activation_max: np.ndarray  # T, each target's largest activation over all patches
    sg_activation: np.ndarray  # T×G, mean activation of the target over each semantic group (NaN padded)
    n_steps: int = 0
    completeness_error: float = float("nan")
    seconds: float = float("nan")

    @property
    def n_semantic_groups(self) -> np.ndarray:
        """Number of semantic groups of each target (T)."""
        return self.semantic_labels.max(axis=1) + 1


@dataclass(frozen=True)
class Circuit:
    """The hypertree H_c: ``transitions[i]`` has its targets in ``layers[i]``; the root is the class logit."""

    layers: tuple[str, ...]
    class_index: int
    transitions: tuple[Transition, ...]
    leaf_top_patches: np.ndarray  # concepts of the leaves (the last transition's core neurons, sorted)
    leaf_activation_max: np.ndarray

    @property
    def leaves(self) -> np.ndarray:
        """Neurons of the last listed layer: they only supply core neurons and have no semantic groups."""
        return np.unique(self.transitions[-1].core)

    def neurons(self, layer_index: int) -> np.ndarray:
        """Circuit neurons of ``layers[layer_index]`` (sorted)."""
        if layer_index < len(self.transitions):
            return self.transitions[layer_index].targets
        return self.leaves


Attribute = Callable[[str, str, np.ndarray, np.ndarray], Attribution]


def semantic_edges(
    scores: np.ndarray, labels: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hyper-edges of one target (eq. 4): for each semantic group j and core neuron s, the signed mean
    score over the group's patches and its weight normalised by the sum of |scores| over the core set.

    ``scores``: k×C per-patch attributions; ``labels``: k; ``core``: tau. Returns
    (group, child, rank, score, weight), each of length n_groups × tau.
    """
    groups, children, ranks, values, weights = [], [], [], [], []
    for j in range(labels.max() + 1):
        t = scores[labels == j][:, core].astype(np.float64).mean(axis=0)
        norm = np.abs(t).sum()
        groups.append(np.full(len(core), j))
        children.append(core)
        ranks.append(np.arange(len(core)))
        values.append(t)
        weights.append(t / norm if norm > 0 else np.zeros_like(t))
    return tuple(np.concatenate(part) for part in (groups, children, ranks, values, weights))


def build_circuit(
    layers: list[str],
    class_index: int,
    activations: Activations,
    attribute: Attribute,
    k: int = 50,
    tau: int = 16,
    max_semantic_groups: int = 5,
    on_transition: Callable[[Transition], None] | None = None,
    tau_by_layer: Mapping[str, int] | None = None,
) -> Circuit:
    """Grow the hypertree: each layer's targets are the union of the core neurons of the layer above.

    ``attribute(layer, lower, targets, top_patches)`` returns the integrated gradients of the targets.
    ``tau_by_layer`` gives a lower layer a smaller tau than ``tau`` (``pipeline.tau_caps``).
    """
    targets = np.array([class_index], dtype=np.int64)
    transitions = []
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        started = time.perf_counter()
        top = activations.top_patches(upper, targets, k)
        attribution = attribute(upper, lower, targets, top)
        importance = np.abs(attribution.scores).mean(axis=1)  # T×C
        core = np.argsort(-importance, axis=1, kind="stable")[:, :(tau_by_layer or {}).get(lower, tau)]
        core_scores = np.take_along_axis(importance, core, axis=1)
        lower_acts = activations.values[lower]
        labels = np.stack([ward_silhouette(lower_acts[row], max_semantic_groups) for row in top])
        upper_acts = activations.values[upper][:, targets]  # P×T
        sg_activation = np.full((len(targets), max_semantic_groups), np.nan)
        for t, (row, lab) in enumerate(zip(top, labels, strict=True)):
            for j in range(lab.max() + 1):
                sg_activation[t, j] = upper_acts[row[lab == j], t].mean()
        edges = [semantic_edges(attribution.scores[t], labels[t], core[t]) for t in range(len(targets))]
        edge_target = np.concatenate([np.full(len(e[0]), t) for t, e in enumerate(edges)])
        cols = [np.concatenate([e[i] for e in edges]) for i in range(5)]
        transition = Transition(
            layer=upper, lower=lower, targets=targets, top_patches=top, core=core, core_scores=core_scores,
            semantic_labels=labels, edge_target=edge_target, edge_group=cols[0], edge_child=cols[1],
            edge_rank=cols[2], edge_score=cols[3], edge_weight=cols[4],
            activation_max=upper_acts.max(axis=0), sg_activation=sg_activation, n_steps=attribution.n_steps,
            completeness_error=attribution.completeness_error, seconds=time.perf_counter() - started,
        )
        transitions.append(transition)
        if on_transition:
            on_transition(transition)
        targets = np.unique(core)
    return Circuit(
        layers=tuple(layers), class_index=class_index, transitions=tuple(transitions),
        leaf_top_patches=activations.top_patches(layers[-1], targets, k),
        leaf_activation_max=activations.values[layers[-1]][:, targets].max(axis=0),
    )
