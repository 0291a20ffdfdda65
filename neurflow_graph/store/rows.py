"""Turn a bundle's tables into the parameter rows of the write queries (one function per query)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from neurflow_graph.store.bundle import BundleTables

Row = dict[str, Any]
_KEY = re.compile(r"[^A-Za-z0-9_]+")
# run.json sections whose keys are data (layer names), stored as one JSON string property.
_JSON_SECTIONS = ("layer_stats",)


def run_properties(run: dict[str, Any], bundle_path: str | None, ingested_at: str) -> Row:
    """run.json flattened to Run node properties: `params.k` -> `params_k`; lists kept when homogeneous.

    `layer_stats` (keyed by layer name) and any value a property cannot hold become JSON strings;
    the whole run.json is kept as `run_json` so the store loses nothing.
    """
    props: Row = {}
    for key, value in run.items():
        if key in ("run_id", "complete"):
            continue
        if key in _JSON_SECTIONS:
            props[f"{key}_json"] = json.dumps(value, sort_keys=True)
        else:
            _flatten(props, _KEY.sub("_", key), value)
    props.update(
        id=str(run["run_id"]),
        class_id=class_row(run)["id"],
        bundle_path=bundle_path,
        ingested_at=ingested_at,
        run_json=json.dumps(run, sort_keys=True),
    )
    return {k: v for k, v in props.items() if v is not None}


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


def model_row(run: dict[str, Any]) -> Row:
    """The Model node: id and name are the model name; the other scalar fields of run.json `model`."""
    model = run["model"]
    row: Row = {k: v for k, v in model.items() if isinstance(v, (str, int, float, bool))}
    row.update(id=str(model["name"]), name=str(model["name"]))
    return row


def class_row(run: dict[str, Any]) -> Row:
    """The Class node, id `{model}/{class_index}` (shared by every run of that model and class)."""
    model, index = str(run["model"]["name"]), int(run["class"]["index"])
    return {"id": f"{model}/{index}", "model": model, "index": index, "name": str(run["class"].get("name", index))}


def layer_rows(tables: BundleTables) -> list[Row]:
    """One row per layer of the run (run.json order, then any other layer a neuron names)."""
    model = tables.model_name
    names = list(dict.fromkeys([*tables.run.get("layers", []), *tables.neurons.column("layer").to_pylist()]))
    return [{"id": f"{model}/{name}", "name": name} for name in names]


def neuron_rows(tables: BundleTables) -> list[Row]:
    model = tables.model_name
    rows = _records(tables.neurons)
    for row in rows:
        row["id"] = row.pop("neuron_id")
        row["layer_id"] = f"{model}/{row['layer']}"
    return rows


def patch_rows(tables: BundleTables) -> list[Row]:
    run_id = tables.run_id
    rows = _records(tables.patches)
    for row in rows:
        row["id"] = f"{run_id}/p{row['patch_id']}"
    return rows


def neuron_group_rows(tables: BundleTables) -> list[Row]:
    run_id = tables.run_id
    rows = []
    for g in _records(tables.neuron_groups):
        rows.append(
            {
                "id": f"{run_id}/{g['group_id']}",
                "group_id": g["group_id"],
                "layer": g["layer"],
                "layer_index": g["layer_index"],
                "group_index": g["group_index"],
                "is_root": g["is_root"],
                "patch_ids": g["patch_ids"] or [],
                "n_neurons": len(g["neuron_ids"] or []),
                "n_semantic_groups": len(g["sg_ids"] or []),
            }
        )
    return rows


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
    return f"{tables.run_id}/{roots[0]}" if roots else None


def semantic_group_rows(tables: BundleTables) -> list[Row]:
    run_id = tables.run_id
    rows = _records(tables.semantic_groups)
    for row in rows:
        row["id"] = f"{run_id}/{row['sg_id']}"
        row["patch_ids"] = row["patch_ids"] or []
    return rows


def in_group_rows(tables: BundleTables) -> list[Row]:
    """Per neuron group, the node ids of its semantic groups."""
    return _group_lists(tables, "sg_ids", lambda sg: f"{tables.run_id}/{sg}")


def member_rows(tables: BundleTables) -> list[Row]:
    """Per neuron group, the ids of its neurons."""
    return _group_lists(tables, "neuron_ids", str)


def exemplar_rows(tables: BundleTables) -> list[Row]:
    """Per neuron group, the node ids of its exemplar patches, best first."""
    rows = _group_lists(tables, "exemplar_patch_ids", lambda p: f"{tables.run_id}/p{p}")
    return [{"group_id": r["group_id"], "patches": r["members"]} for r in rows]


def _group_lists(tables: BundleTables, column: str, to_id: Callable[[Any], str]) -> list[Row]:
    groups = tables.neuron_groups.column("group_id").to_pylist()
    lists = tables.neuron_groups.column(column).to_pylist()
    return [
        {"group_id": f"{tables.run_id}/{g}", "members": [to_id(m) for m in (members or [])]}
        for g, members in zip(groups, lists, strict=True)
        if members
    ]


def hyperedge_rows(tables: BundleTables) -> list[Row]:
    """One row per parent semantic group: its children and their edge values as parallel lists."""
    grouped = (
        tables.hyperedges.select(["parent_sg_id", "child_id", "score", "weight", "core_score", "core_rank"])
        .group_by("parent_sg_id", use_threads=False)  # keeps row order inside each group
        .aggregate([(c, "list") for c in ("child_id", "score", "weight", "core_score", "core_rank")])
    )
    cols = {name: grouped.column(name).to_pylist() for name in grouped.column_names}
    run_id = tables.run_id
    return [
        {
            "sg": f"{run_id}/{sg}",
            "children": child,
            "score": score,
            "weight": weight,
            "core_score": core_score,
            "core_rank": core_rank,
        }
        for sg, child, score, weight, core_score, core_rank in zip(
            cols["parent_sg_id"],
            cols["child_id_list"],
            cols["score_list"],
            cols["weight_list"],
            cols["core_score_list"],
            cols["core_rank_list"],
            strict=True,
        )
    ]


def group_edge_rows(tables: BundleTables) -> list[Row]:
    run_id = tables.run_id
    return [
        {
            "child": f"{run_id}/{r['child_group_id']}",
            "parent": f"{run_id}/{r['parent_group_id']}",
            "weight": r["weight"],
            "n_edges": r["n_edges"],
        }
        for r in _records(tables.group_edges)
    ]


def row_size(row: Row) -> int:
    """How many graph elements a row writes: the length of its member list, else 1."""
    for key in ("members", "patches", "children"):
        if key in row:
            return len(row[key])
    return 1


def batches(rows: list[Row], size: int) -> Iterator[list[Row]]:
    """Consecutive slices of `rows` writing at most `size` elements each (at least one row per slice)."""
    batch: list[Row] = []
    total = 0
    for row in rows:
        n = row_size(row)
        if batch and total + n > size:
            yield batch
            batch, total = [], 0
        batch.append(row)
        total += n
    if batch:
        yield batch


def _records(table: pa.Table) -> list[Row]:
    return table.to_pylist()
