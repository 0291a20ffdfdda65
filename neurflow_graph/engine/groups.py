"""Step 6: neuron groups (clusters of semantic groups within a layer) and the weights between groups."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from neurflow_graph.engine.activations import Activations
from neurflow_graph.engine.circuit import Circuit
from neurflow_graph.engine.clustering import ward_silhouette
from neurflow_graph.ids import group_id


@dataclass(frozen=True)
class NeuronGroup:
    """Neurons of one layer sharing a visual feature; ``semantic_groups`` holds (neuron, j) pairs.

    ``patch_ids`` is the group's concept (union of its semantic groups' patches); ``exemplars`` are the
    concept's patches nearest the cluster centre, nearest first.
    """

    group_id: str
    layer: str
    layer_index: int
    group_index: int
    is_root: bool
    neurons: tuple[int, ...]
    semantic_groups: tuple[tuple[int, int], ...]
    patch_ids: tuple[int, ...]
    exemplars: tuple[int, ...]


@dataclass(frozen=True)
class GroupEdge:
    """Sum of the hyper-edge weights from ``child``'s neurons into ``parent``'s semantic groups."""

    child: str
    parent: str
    weight: float
    n_edges: int


@dataclass(frozen=True)
class NeuronGroups:
    """All neuron groups of a circuit (root layer first) and the weighted edges between them."""

    groups: tuple[NeuronGroup, ...]
    edges: tuple[GroupEdge, ...]

    def in_layer(self, layer: str) -> list[NeuronGroup]:
        """Groups of one layer, in index order."""
        return [g for g in self.groups if g.layer == layer]


def find_neuron_groups(
    circuit: Circuit, activations: Activations, max_groups: int = 100, n_exemplars: int = 8
) -> NeuronGroups:
    """Cluster each layer's semantic groups (mean patch vectors, Ward, silhouette) into neuron groups.

    The root layer holds one group, the class logit. A neuron whose semantic groups fall into several
    clusters belongs to several groups; clusters sharing a neuron are not merged.
    """
    groups: list[NeuronGroup] = []
    sg_group: dict[tuple[int, int, int], str] = {}  # (layer index, neuron, j) -> group id
    for li, tr in enumerate(circuit.transitions):
        lower = activations.values[tr.lower]
        owners = [(t, j) for t in range(len(tr.targets)) for j in range(tr.n_semantic_groups[t])]
        members = [tr.top_patches[t][tr.semantic_labels[t] == j] for t, j in owners]
        vectors = np.stack([lower[m].mean(axis=0) for m in members])
        labels = np.zeros(len(owners), dtype=np.int64) if li == 0 else ward_silhouette(vectors, max_groups)
        for g in range(labels.max() + 1):
            rows = np.nonzero(labels == g)[0]
            patch_ids = np.unique(np.concatenate([members[r] for r in rows]))
            centre = vectors[rows].mean(axis=0)
            distance = np.linalg.norm(lower[patch_ids] - centre, axis=1)
            exemplars = patch_ids[np.argsort(distance, kind="stable")[:n_exemplars]]
            sgs = tuple((int(tr.targets[owners[r][0]]), int(owners[r][1])) for r in rows)
            gid = group_id(tr.layer, g)
            for neuron, j in sgs:
                sg_group[(li, neuron, j)] = gid
            groups.append(NeuronGroup(
                group_id=gid, layer=tr.layer, layer_index=li, group_index=g, is_root=li == 0,
                neurons=tuple(sorted({n for n, _ in sgs})), semantic_groups=sgs,
                patch_ids=tuple(int(p) for p in patch_ids), exemplars=tuple(int(p) for p in exemplars),
            ))
    return NeuronGroups(groups=tuple(groups), edges=tuple(_group_edges(circuit, groups, sg_group)))


def _group_edges(circuit: Circuit, groups: list[NeuronGroup], sg_group: dict) -> list[GroupEdge]:
    neuron_groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for g in groups:
        for n in g.neurons:
            neuron_groups[(g.layer_index, n)].append(g.group_id)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for li, tr in enumerate(circuit.transitions[:-1]):  # the last transition's children are leaves
        for t, j, child, w in zip(tr.edge_target, tr.edge_group, tr.edge_child, tr.edge_weight, strict=True):
            parent = sg_group[(li, int(tr.targets[t]), int(j))]
            for child_group in neuron_groups[(li + 1, int(child))]:
                total = totals[(child_group, parent)]
                total[0] += float(w)
                total[1] += 1
    return [GroupEdge(child=c, parent=p, weight=w, n_edges=n) for (c, p), (w, n) in sorted(totals.items())]
