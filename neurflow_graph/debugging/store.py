"""Where debugging reads its groups (the store, or a bundle) and writes its results (Intervention nodes).

Each masked group becomes one `Intervention` node, `(:Intervention)-[:MASKS]->(:NeuronGroup)`, MERGEd by a
deterministic id `{group node id}/mask-{digest}` (digest of the layer, channels, image set, seeds and ε), so
running the same debugging again replaces the node instead of adding one.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from neurflow_graph import ids
from neurflow_graph.debugging.core import DebugResult, GroupDebug
from neurflow_graph.errors import ConfigError, StoreError
from neurflow_graph.records import Group
from neurflow_graph.store import queries
from neurflow_graph.store.connection import Connection


def layer_groups_from_bundle(bundle_dir: str | os.PathLike[str], layer: str) -> list[Group]:
    """The non-root groups of `layer` read from a run bundle (no store needed), as `layer_groups.cypher` gives them."""
    from neurflow_graph.bundle.tables import read_bundle_tables

    tables = read_bundle_tables(bundle_dir)
    run_id = tables.run_id
    neurons = {r["neuron_id"]: r for r in tables.neurons.to_pylist()}
    weight_up: dict[str, float] = {}
    for edge in tables.group_edges.to_pylist():
        weight_up[edge["child_group_id"]] = weight_up.get(edge["child_group_id"], 0.0) + edge["weight"]
    groups = []
    layers = []
    for g in tables.neuron_groups.to_pylist():
        layers.append(g["layer"])
        if g["layer"] != layer or g["is_root"]:
            continue
        members = sorted(g["neuron_ids"], key=lambda n: neurons[n]["channel"])
        groups.append(Group(
            run_id=run_id, id=ids.group_node_id(run_id, g["group_id"]), group_id=g["group_id"], layer=layer,
            layer_index=g["layer_index"], group_index=g["group_index"], is_root=False, neurons=tuple(members),
            channels=tuple(int(neurons[n]["channel"]) for n in members),
            activation_max=tuple(float(neurons[n]["activation_max"]) for n in members),
            weight_up=float(weight_up.get(g["group_id"], 0.0)),
        ))
    if not groups:
        with_groups = sorted(set(layers), key=layers.index)
        raise ConfigError(f"layer {layer!r} has no neuron groups in bundle {bundle_dir}; layers with groups: "
                          f"{', '.join(with_groups)}")
    return sorted(groups, key=lambda g: g.group_index)


def intervention_id(group: GroupDebug, result: DebugResult) -> str:
    """Deterministic id of one masked group's result: same group, image set, seeds and ε -> same id."""
    return ids.intervention_id(group.group.id, {
        "layer": result.layer, "channels": list(group.group.channels), "class": result.class_index,
        "images": list(result.sha256) or list(result.sources), "seeds": result.seeds, "seed": result.seed,
        "eps": result.eps,
    })


def intervention_properties(group: GroupDebug, result: DebugResult, class_id: str,
                            image_set: str) -> dict[str, Any]:
    """The Intervention node's properties: what was masked, on which images, and every summary number."""
    fp = set(result.false_positives.tolist())
    return {
        "kind": "mask_group",
        "run_id": group.group.run_id,
        "class_id": class_id,
        "class_index": result.class_index,
        "group_id": group.group.group_id,
        "group_node": group.group.id,
        "layer": result.layer,
        "channels": [int(c) for c in group.group.channels],
        "n_neurons": len(group.group.channels),
        "layer_width": result.layer_width,
        "image_set": image_set,
        "n_images": int(result.images.shape[0]),
        "n_false_positives": len(fp),
        "seeds": result.seeds,
        "seed": result.seed,
        "eps": result.eps,
        "metric_mean": float(group.metric.mean()),
        "metric_max": float(group.metric.max()),
        "logit_drop": group.mean_logit_drop,
        "prob_drop": group.mean_prob_drop,
        "flipped": group.flipped,
        "random_logit_drop_mean": float(group.random_logit_drop.mean()),
        "random_logit_drop_std": float(group.random_logit_drop.std()),
        "random_prob_drop_mean": float(group.random_prob_drop.mean()),
        "random_prob_drop_std": float(group.random_prob_drop.std()),
        "random_prob_drops": [float(v) for v in group.random_prob_drop],
        "random_logit_drops": [float(v) for v in group.random_logit_drop],
        "random_flipped_mean": float(group.random_flipped.mean()),
        "share_random_worse": group.share_random_worse,
        "top_images": [int(i) for i in group.top_images],
        "top_sources": [result.sources[i] for i in group.top_images],
        "top_logit_drops": [float(group.logit_drop[i]) for i in group.top_images],
        "top_false_positive": [i in fp for i in group.top_images],
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def store_interventions(conn: Connection, result: DebugResult, class_id: str, image_set: str = "") -> list[str]:
    """Write one Intervention per group of `result` (MERGE by id, so re-runs are idempotent); returns the ids."""
    rows = [{"id": intervention_id(g, result), "group": g.group.id,
             "props": intervention_properties(g, result, class_id, image_set)} for g in result.groups]
    if not rows:
        return []
    with conn.writing():
        lists = queries.load("write_interventions").row_lists(rows)
        written = conn.run("write_interventions", rows=lists)[0]["written"]
    if written != len(rows):
        raise StoreError(f"stored {written} of {len(rows)} interventions: a group of run {result.run_id} is no "
                         "longer in the store (was the run loaded again meanwhile?)")
    return [r["id"] for r in rows]

