"""The circuit a smaller tau gives, cut from a run with a larger tau (no new attribution needed)."""

from __future__ import annotations

import dataclasses

import numpy as np

from neurflow_graph.engine.circuit import Circuit, Transition

from ..errors import ConfigError


def prune(circuit: Circuit, tau: int) -> Circuit:
    """The circuit a run with ``tau`` core neurons per target builds, taken from ``circuit`` (tau >= ``tau``).

    A target's core ranking is by mean |IG| over its own concept, which does not depend on tau, so a
    tau=4 run's core sets are the first 4 of a tau=16 run's, and its targets (unions of core sets)
    are a subset of the tau=16 run's targets. Edge weights (eq. 4) are renormalised over the kept core.
    """
    run_tau = circuit.transitions[0].core.shape[1]
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or not 1 <= tau <= run_tau:
        raise ConfigError(f"tau must be an integer in 1..{run_tau} (the run's tau), got {tau!r}; "
                          "re-run the circuit with a larger tau")
    tau = int(tau)
    if tau == run_tau:
        return circuit
    targets = circuit.transitions[0].targets
    transitions = []
    for tr in circuit.transitions:
        rows = np.searchsorted(tr.targets, targets)
        if np.any(rows >= len(tr.targets)) or np.any(tr.targets[np.minimum(rows, len(tr.targets) - 1)] != targets):
            raise ConfigError(f"circuit layer {tr.layer!r} lacks targets of the pruned circuit; is its tau consistent?")
        transitions.append(_subset(tr, rows, tau))
        targets = np.unique(tr.core[rows, :tau])
    leaves = np.unique(circuit.transitions[-1].core)
    rows = np.searchsorted(leaves, targets)
    return dataclasses.replace(circuit, transitions=tuple(transitions),
                               leaf_top_patches=circuit.leaf_top_patches[rows],
                               leaf_activation_max=circuit.leaf_activation_max[rows])


def _subset(tr: Transition, rows: np.ndarray, tau: int) -> Transition:
    """Transition rows ``rows`` with their first ``tau`` core neurons and the hyper-edges of those."""
    new_row = np.full(len(tr.targets), -1)
    new_row[rows] = np.arange(len(rows))
    keep = (new_row[tr.edge_target] >= 0) & (tr.edge_rank < tau)
    edge_target, edge_group, edge_score = new_row[tr.edge_target[keep]], tr.edge_group[keep], tr.edge_score[keep]
    key = edge_target * (int(tr.edge_group.max(initial=0)) + 1) + edge_group
    norm = np.zeros(int(key.max(initial=0)) + 1)
    np.add.at(norm, key, np.abs(edge_score))
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(norm[key] > 0, edge_score / norm[key], 0.0)
    return dataclasses.replace(
        tr, targets=tr.targets[rows], top_patches=tr.top_patches[rows], core=tr.core[rows, :tau],
        core_scores=tr.core_scores[rows, :tau], semantic_labels=tr.semantic_labels[rows],
        edge_target=edge_target, edge_group=edge_group, edge_child=tr.edge_child[keep], edge_rank=tr.edge_rank[keep],
        edge_score=edge_score, edge_weight=weight, activation_max=tr.activation_max[rows],
        sg_activation=tr.sg_activation[rows],
    )
