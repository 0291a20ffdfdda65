"""Per-group faithfulness (``--faithfulness groups``): what ``debug`` computes for each group, on the run's own images.

At ingest every non-root group of the circuit is masked with ``debug_images`` (the same code, so the same random
draws: ``default_rng((seed, s, group_index))`` for s < sets) and its figures go into run.json ``faithfulness.groups``
and onto its ``NeuronGroup`` node. ``stored_group_figures`` gives them back to ``debug`` when its request (the
run's own images, the same seeds) is the one measured, so it need not mask again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neurflow_graph import ids
from neurflow_graph.debugging.core import debug_images
from neurflow_graph.engine.groups import NeuronGroups
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.params import FaithfulnessSettings
from neurflow_graph.records import Group


def bundle_groups(subject, groups: NeuronGroups) -> dict[str, list[Group]]:
    """The non-root groups of an in-memory run, by layer, as the records ``debug_images`` takes."""
    circuit, model = subject.circuit, subject.meta.model.name
    out: dict[str, list[Group]] = {}
    for g in groups.groups:
        if g.is_root or not g.neurons:
            continue
        li = g.layer_index
        if li < len(circuit.transitions):
            channels, act_max = circuit.transitions[li].targets, circuit.transitions[li].activation_max
        else:
            channels, act_max = circuit.leaves, circuit.leaf_activation_max
        row = {int(c): float(a) for c, a in zip(channels, act_max, strict=True)}
        members = sorted(int(n) for n in g.neurons)
        out.setdefault(g.layer, []).append(Group(
            id=ids.group_node_id(subject.run_id, g.group_id), group_id=g.group_id, layer=g.layer, layer_index=li,
            group_index=g.group_index, is_root=False, neurons=tuple(ids.neuron_id(model, g.layer, c) for c in members),
            run_id=subject.run_id, channels=tuple(members), activation_max=tuple(row[c] for c in members),
        ))
    return out


def group_faithfulness(subject, groups: NeuronGroups, settings: FaithfulnessSettings) -> list[dict[str, Any]]:
    """One row (FAITHFULNESS_GROUP_FIELDS) per non-root group: ``debug_images`` on the run's images, ``sets`` seeds."""
    rows = []
    for layer, members in bundle_groups(subject, groups).items():
        result = debug_images(subject.model, subject.images, members, subject.class_index,
                              normalize=subject.spec.normalize, seeds=settings.sets, seed=settings.seed,
                              batch_size=subject.batch_size, device=subject.device, run_id=subject.run_id)
        for g in result.groups:
            rand = g.random_logit_drop
            std = float(rand.std(ddof=1)) if len(rand) > 1 else 0.0
            rows.append({
                "group_id": g.group.group_id, "layer": layer, "layer_index": g.group.layer_index,
                "n_neurons": len(g.group.channels), "n_images": int(result.images.shape[0]),
                "logit_drop": g.mean_logit_drop, "prob_drop": g.mean_prob_drop,
                "random_logit_drop_mean": float(rand.mean()), "random_logit_drop_std": std,
                "random_prob_drop_mean": float(g.random_prob_drop.mean()),
                "random_prob_drop_std": float(g.random_prob_drop.std(ddof=1)) if len(rand) > 1 else 0.0,
                "logit_z": (g.mean_logit_drop - float(rand.mean())) / max(std, 1e-12),
                "share_random_worse": g.share_random_worse,
                "random_logit_drops": [float(v) for v in rand],
                "random_prob_drops": [float(v) for v in g.random_prob_drop],
                "random_flipped": [int(v) for v in g.random_flipped],
            })
    return rows


def known_random_figures(meta: RunMeta | None, sha256: Sequence[str], seeds: int,
                         seed: int) -> dict[str, dict[str, Any]]:
    """The run's stored per-group figures (group id -> row) when ``debug``'s request is the one measured at ingest:
    level ``groups``, ``seeds`` random sets from ``seed``, on exactly the run's images in order; else empty."""
    measured = meta.faithfulness if meta is not None else None
    if (measured is None or measured.level != "groups" or measured.sets != seeds or measured.seed != seed
            or not meta.images.sha256 or tuple(sha256) != meta.images.sha256):
        return {}
    return {r["group_id"]: r for r in measured.groups if "random_flipped" in r}
