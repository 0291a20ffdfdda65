"""Turn a bundle's tables into the parameter rows of the write queries (one function per query).

Rows stay Arrow tables, their columns named as in the query file's `// Row:` header, until a batch is laid
out for the driver (`Query.row_lists`): column-wise work instead of one Python dict per row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from neurflow_graph import ids
from neurflow_graph.bundle.tables import BundleTables
from neurflow_graph.engine.meta import FAITHFULNESS_LAYER_FIELDS, FaithfulnessMeta, RunMeta

Row = dict[str, Any]
_KEY = re.compile(r"[^A-Za-z0-9_]+")
# run.json sections whose keys are data (layer names), stored as one JSON string property.
_JSON_SECTIONS = ("layer_stats",)


def run_properties(meta: RunMeta, bundle_path: str | None, ingested_at: str) -> Row:
    """The run record flattened to Run node properties: every field of its run.json (`meta.record`, the fields
    this release does not read too), `params.k` -> `params_k`; lists kept when homogeneous.

    `layer_stats` (keyed by layer name) and any value a property cannot hold become JSON strings;
    the whole run.json is kept as `run_json` so the store loses nothing. `weights_sha256` (top level) lands on
    the Run, never on the Model node that runs of other weights share.
    """
    props: Row = {}
    for key, value in meta.record.items():
        if key in ("run_id", "complete"):
            continue
        if key in _JSON_SECTIONS:
            props[f"{key}_json"] = json.dumps(value, sort_keys=True)
        else:
            _flatten(props, _KEY.sub("_", key), value)
    props.update(
        id=meta.run_id,
        class_id=class_row(meta)["id"],
        bundle_path=bundle_path,
        ingested_at=ingested_at,
        run_json=json.dumps(meta.record, sort_keys=True),
    )
    props.update(faithfulness_properties(meta.faithfulness))
    return {k: v for k, v in props.items() if v is not None}


FAITHFULNESS_PREFIX = "faith_"
"""Run properties holding the per-layer faithfulness figures as parallel lists, one item per layer below the logit
(`faith_layer`, `faith_logit_z`, ...), which faithfulness.cypher unwinds; the summary is `faithfulness_*`."""


def faithfulness_properties(section: FaithfulnessMeta | None) -> Row:
    """The per-layer figures of the run's faithfulness as parallel list properties (engine.meta's layer fields)."""
    if section is None:
        return {}
    layers = section.layers
    return {f"{FAITHFULNESS_PREFIX}{name}": [kind(r[name]) for r in layers]
            for name, kind in FAITHFULNESS_LAYER_FIELDS.items()}


_GROUP_FAITHFULNESS = ("logit_drop", "prob_drop", "random_logit_drop_mean", "random_logit_drop_std",
                       "random_prob_drop_mean", "random_prob_drop_std", "logit_z", "share_random_worse", "n_images")


def group_faithfulness_rows(tables: BundleTables) -> pa.Table:
    """Per group measured (`--faithfulness groups`): its node id and figures, for write_group_faithfulness."""
    rows = tables.meta.faithfulness.groups if tables.meta.faithfulness else ()
    return pa.table({
        "id": pa.array([ids.group_node_id(tables.run_id, r["group_id"]) for r in rows], pa.string()),
        **{name: pa.array([r[name] for r in rows], pa.int64() if name == "n_images" else pa.float64())
           for name in _GROUP_FAITHFULNESS},
    })


def _flatten(out: Row, prefix: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(out, f"{prefix}_{_KEY.sub('_', str(key))}", item)
    elif isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        if kinds == {int, float}:  # a property list holds one type: widen to float
            out[prefix] = [float(v) for v in value]
        elif len(kinds) <= 1 and kinds <= {str, int, float, bool}:
            out[prefix] = list(value)
        else:
            out[f"{prefix}_json"] = json.dumps(value, sort_keys=True)
    elif value is None or isinstance(value, (str, int, float, bool)):
        out[prefix] = value
    else:
        out[f"{prefix}_json"] = json.dumps(value, sort_keys=True, default=str)


def model_row(meta: RunMeta) -> Row:
    """The Model node: id and name are the model name; its class count and the scalar fields of its provenance."""
    model = meta.model
    row: Row = {k: v for k, v in model.provenance.items() if isinstance(v, (str, int, float, bool))}
    row.update(num_classes=model.num_classes, id=model.name, name=model.name)
    return row


def class_row(meta: RunMeta) -> Row:
    """The Class node, id `{model}/{class_index}` (shared by every run of that model and class)."""
    model, index = meta.model.name, meta.class_index
    return {"id": ids.class_id(model, index), "model": model, "index": index, "name": meta.class_name}


def layer_rows(tables: BundleTables) -> pa.Table:
    """One row per layer of the run (run.json order, then any other layer a neuron names)."""
    model = tables.model_name
    names = list(dict.fromkeys([*tables.meta.layers, *tables.neurons.column("layer").to_pylist()]))
    return pa.table({"id": [ids.layer_id(model, name) for name in names], "name": names})


def neuron_rows(tables: BundleTables) -> pa.Table:
    neurons = tables.neurons
    return neurons.append_column("id", neurons["neuron_id"]).append_column(
        "layer_id", _prefixed(ids.layer_scope(tables.model_name), neurons["layer"])
    )


def patch_rows(tables: BundleTables) -> pa.Table:
    patches = tables.patches
    return patches.append_column("id", _prefixed(ids.patch_scope(tables.run_id), patches["patch_id"]))


def neuron_group_rows(tables: BundleTables) -> pa.Table:
    groups = tables.neuron_groups
    return pa.table(
        {
            "id": _prefixed(ids.run_scope(tables.run_id), groups["group_id"]),
            "group_id": groups["group_id"],
            "layer": groups["layer"],
            "layer_index": groups["layer_index"],
            "group_index": groups["group_index"],
            "is_root": groups["is_root"],
            "patch_ids": _or_empty(groups["patch_ids"]),
            "n_neurons": pc.list_value_length(groups["neuron_ids"]).fill_null(0),
            "n_semantic_groups": pc.list_value_length(groups["sg_ids"]).fill_null(0),
            "neurons": pa.array([sorted(n or [], key=lambda i: (ids.channel_of(i), i))
                                 for n in groups["neuron_ids"].to_pylist()], pa.list_(pa.string())),
        }
    )


def root_group_id(tables: BundleTables) -> str | None:
    """Node id of the run's root neuron group (the class logit), or None if the bundle has none."""
    roots = [
        g
        for g, root in zip(
            tables.neuron_groups.column("group_id").to_pylist(),
            tables.neuron_groups.column("is_root").to_pylist(),
            strict=True,
        )
        if root
    ]
    return ids.group_node_id(tables.run_id, roots[0]) if roots else None


def semantic_group_rows(tables: BundleTables) -> pa.Table:
    sgs = tables.semantic_groups
    return sgs.set_column(
        sgs.schema.get_field_index("patch_ids"), "patch_ids", _or_empty(sgs["patch_ids"])
    ).append_column("id", _prefixed(ids.run_scope(tables.run_id), sgs["sg_id"]))


def in_group_rows(tables: BundleTables) -> pa.Table:
    """Per neuron group, the node ids of its semantic groups."""
    return _group_lists(tables, "sg_ids", f"{tables.run_id}/", "members")


def member_rows(tables: BundleTables) -> pa.Table:
    """Per neuron group, the ids of its neurons."""
    return _group_lists(tables, "neuron_ids", "", "members")


def exemplar_rows(tables: BundleTables) -> pa.Table:
    """Per neuron group, the node ids of its exemplar patches, best first."""
    return _group_lists(tables, "exemplar_patch_ids", f"{tables.run_id}/p", "patches")


def _group_lists(tables: BundleTables, column: str, prefix: str, name: str) -> pa.Table:
    """Per neuron group with a non-empty `column` list: its node id and the list's items as node ids."""
    groups = tables.neuron_groups
    keep = pc.fill_null(pc.greater(pc.list_value_length(groups[column]), 0), False)
    groups = groups.filter(keep)
    lists = groups[column].combine_chunks()
    items = _prefixed(prefix, lists.flatten())
    return pa.table(
        {
            "group_id": _prefixed(ids.run_scope(tables.run_id), groups["group_id"]),
            name: pa.ListArray.from_arrays(pc.subtract(lists.offsets, lists.offsets[0]), items),
        }
    )


def hyperedge_rows(tables: BundleTables, block: tuple[int, int] = (0, 0), blocks: int = 1) -> pa.Table:
    """One row per parent semantic group (first-seen order): its children and their edge values as parallel
    lists, in table order. With `blocks` > 1 only the edges of `block` = (parent shard, child shard), each
    node's shard being its first-seen index modulo `blocks`: blocks sharing neither shard share no node."""
    edges = tables.hyperedges
    if blocks > 1:
        keep = np.ones(edges.num_rows, dtype=bool)
        for column, shard in zip(("parent_sg_id", "child_id"), block, strict=True):
            codes = edges[column].combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)
            keep &= codes % blocks == shard
        edges = edges.filter(pa.array(keep))
    parents = edges["parent_sg_id"].combine_chunks().dictionary_encode()
    codes = parents.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    offsets = pa.array(
        np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(parents.dictionary)))]), pa.int32()
    )
    values = ("child_id", "score", "weight", "core_score", "core_rank")
    grouped = edges.select(list(values)).take(order)
    return pa.table(
        {
            "sg": _prefixed(ids.run_scope(tables.run_id), parents.dictionary),
            **{
                name: pa.ListArray.from_arrays(offsets, grouped[c].combine_chunks())
                for name, c in zip(("children", *values[1:]), values, strict=True)
            },
        }
    )


def group_edge_rows(tables: BundleTables) -> pa.Table:
    edges = tables.group_edges
    return pa.table(
        {
            "child": _prefixed(ids.run_scope(tables.run_id), edges["child_group_id"]),
            "parent": _prefixed(ids.run_scope(tables.run_id), edges["parent_group_id"]),
            "weight": edges["weight"],
            "n_edges": edges["n_edges"],
        }
    )


_LIST_COLUMNS = ("members", "patches", "children")
"""A row holding one of these lists writes one graph element per item; any other row writes one."""


def row_sizes(rows: pa.Table) -> np.ndarray:
    """How many graph elements each row writes: the length of its member list, else 1."""
    for name in _LIST_COLUMNS:
        if name in rows.column_names:
            return pc.list_value_length(rows[name]).fill_null(0).to_numpy()
    return np.ones(rows.num_rows, dtype=np.int64)


def batches(rows: pa.Table, size: int) -> Iterator[tuple[pa.Table, int]]:
    """Consecutive slices of `rows` writing at most `size` elements each (at least one row per slice),
    each with the number of elements it writes."""
    ends = np.cumsum(row_sizes(rows))
    start, done = 0, 0
    while start < rows.num_rows:
        stop = max(int(np.searchsorted(ends, done + size, side="right")), start + 1)
        yield rows.slice(start, stop - start), int(ends[stop - 1] - done)
        start, done = stop, int(ends[stop - 1])


def _prefixed(prefix: str, values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`prefix + str(value)` for every value (node ids built from bundle ids)."""
    return pc.binary_join_element_wise(prefix, pc.cast(values, pa.string()), "")


def _or_empty(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    """A list column with nulls replaced by empty lists (a property list is never null)."""
    return lists.fill_null(pa.scalar([], lists.type))
