"""Every id the package mints, and the only place that takes one apart (docs/artifacts.md, "Ids").

    class       {model}/{index}                       digits/3
    neuron      {model}/{layer}/{channel}             digits/conv2/17
    semantic    {neuron}#s{j}                         digits/conv2/17#s0
    group       {layer}/g{index}   (within a run)     conv2/g1
    layer       {model}/{layer}                       digits/conv2
    group node  {run_id}/{group}   (in the store)     digits-c3-1a2b3c4d5e/conv2/g1
    patch node  {run_id}/p{patch}  (in the store)     digits-c3-1a2b3c4d5e/p17
    run         {model}-c{class}-{10 hex of the identity's SHA-256}
    request     {model}-c{class}-r{16 hex of the request's SHA-256}   digits-c3-r0a1b2c3d4e5f6a7b

It sits below the engine (the engine names its groups) so that every layer can use it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def class_id(model: str, index: int | str) -> str:
    """A class of a model, e.g. ``digits/3``."""
    return f"{model}/{index}"


def class_index(cid: str) -> int:
    """The class index of a class id (``digits/3`` -> 3)."""
    return int(cid.rsplit("/", 1)[1])


def neuron_id(model: str, layer: str, channel: int) -> str:
    """Canonical neuron id, e.g. ``resnet50/layer4.2/1203``."""
    return f"{model}/{layer}/{channel}"


def channel_of(nid: str) -> int:
    """The channel (unit) index of a neuron id."""
    return int(nid.rsplit("/", 1)[1])


def semantic_group_id(model: str, layer: str, channel: int, j: int) -> str:
    """Canonical semantic group id, e.g. ``resnet50/layer4.2/1203#s0``."""
    return f"{neuron_id(model, layer, channel)}#s{j}"


def parse_semantic_group(sgid: str) -> tuple[str, int]:
    """(neuron id, j) of a semantic group id."""
    neuron, j = sgid.rsplit("#s", 1)
    return neuron, int(j)


def group_id(layer: str, index: int) -> str:
    """Run-scoped id of a neuron group, e.g. ``layer4.2/g3``."""
    return f"{layer}/g{index}"


def group_layer(gid: str) -> str:
    """The layer of a run-scoped group id (``layer4.2/g3`` -> ``layer4.2``)."""
    return gid.rsplit("/", 1)[0]


def layer_id(model: str, layer: str) -> str:
    """The store-wide id of a model's layer, e.g. ``digits/conv2``."""
    return f"{layer_scope(model)}{layer}"


def layer_scope(model: str) -> str:
    """The prefix of a model's layer ids (for vectorised minting)."""
    return f"{model}/"


def run_scope(run_id: str) -> str:
    """The prefix that makes a bundle-scoped id (group, semantic group) store-wide, for vectorised minting."""
    return f"{run_id}/"


def patch_scope(run_id: str) -> str:
    """The prefix of a run's patch node ids (``{run_id}/p{patch_id}``)."""
    return f"{run_id}/p"


def group_node_id(run_id: str, gid: str) -> str:
    """The store-wide id of a run's group, e.g. ``digits-c3-1a2b3c4d5e/conv2/g1``."""
    return f"{run_scope(run_id)}{gid}"


def run_of_group_node(node_id: str) -> str:
    """The run id of a group node id (``digits-c3-1a2b3c4d5e/conv2/g1`` -> ``digits-c3-1a2b3c4d5e``)."""
    return node_id.rsplit("/", 2)[0]


def run_id(model_name: str, class_index: int, identity: dict[str, Any]) -> str:
    """Stable run id: the same identity (weights, class, images, parameters) gives the same id."""
    return f"{model_name}-c{class_index}-{_digest(identity)[:10]}"


def request_key(model_name: str, class_index: int, request: dict[str, Any]) -> str:
    """Stable key of a run's request (weights, layers, parameters, class, candidate images before filtering by
    prediction): known before any model forward, so a driver can skip a class whose request is complete."""
    return f"{model_name}-c{class_index}-r{_digest(request)[:16]}"


def _digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def intervention_id(group_node: str, key: dict[str, Any]) -> str:
    """Deterministic id of one image-debugging result: the same group and experiment give the same id."""
    return f"{group_node}/mask-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]}"


def slug(name: str, fill: str = "_") -> str:
    """``name`` made safe as one path component: characters other than letters, digits, ``-_.`` become ``fill``."""
    return "".join(c if c.isalnum() or c in "-_." else fill for c in name)
