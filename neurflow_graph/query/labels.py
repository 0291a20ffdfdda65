"""What labelling reads from and writes to the graph, through the `label*` query files in cypher/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neurflow_graph.errors import ConfigError, StoreError
from neurflow_graph.store.connection import Connection


@dataclass(frozen=True)
class LabelRun:
    """The run being labelled: its class and the bundle folder its thumbnails live in."""

    run_id: str
    class_id: str
    class_name: str
    model: str
    bundle_path: Path | None


@dataclass(frozen=True)
class StoredGroup:
    """A NeuronGroup as stored: its exemplars (patch ids and thumbnail paths, best first) and current label."""

    id: str
    group_id: str
    layer: str
    layer_index: int
    is_root: bool
    patch_ids: tuple[int, ...]
    thumbnails: tuple[str | None, ...]
    label: str | None
    label_key: str | None


@dataclass(frozen=True)
class StoredEdge:
    """A FEEDS edge between two groups of the run (node ids), its weight and current relation key."""

    child: str
    parent: str
    child_group_id: str
    parent_group_id: str
    weight: float
    relation: str | None
    relation_key: str | None


def fetch_label_run(conn: Connection, class_ref: str, run_id: str | None = None) -> LabelRun:
    """The run to label: `run_id` (checked against `class_ref`), else the newest complete run of the class."""
    if run_id is not None:
        rows = conn.run("label_run", run_id=run_id)
        if not rows:
            raise StoreError(f"run {run_id!r} is not in the store; `neurflow-graph load` its bundle first")
        row = rows[0]
        if row["complete"] is not True:
            raise StoreError(f"run {run_id!r} is incomplete in the store (its ingest was interrupted); load it again")
        if class_ref not in (row["class_id"], str(row["class_name"]), str(row["class_index"])):
            raise ConfigError(f"run {run_id!r} is of class {row['class_id']} ({row['class_name']}), "
                              f"not {class_ref!r}")
        return _label_run(row)
    rows = conn.run("label_runs_of_class", class_ref=str(class_ref))
    if not rows:
        raise StoreError(f"no complete run of class {class_ref!r} is stored; name the class by id "
                         "(e.g. digits/3), index or name, or load its run first")
    classes = sorted({r["class_id"] for r in rows})
    if len(classes) > 1:
        raise ConfigError(f"class {class_ref!r} matches several classes ({', '.join(classes)}); name one by id")
    return _label_run(rows[0])


def fetch_groups(conn: Connection, run_id: str) -> list[StoredGroup]:
    """The run's neuron groups, logit layer first, each with its exemplars in rank order."""
    groups = []
    for row in conn.run("label_groups", run_id=run_id):
        exemplars = sorted((e for e in row["exemplars"] if e is not None), key=lambda e: e[0])
        groups.append(
            StoredGroup(
                id=row["id"],
                group_id=row["group_id"],
                layer=row["layer"],
                layer_index=int(row["layer_index"]),
                is_root=row["is_root"] is True,
                patch_ids=tuple(int(e[1]) for e in exemplars),
                thumbnails=tuple(e[2] for e in exemplars),
                label=row["label"],
                label_key=row["label_key"],
            )
        )
    return groups


def fetch_edges(conn: Connection, run_id: str) -> list[StoredEdge]:
    """The run's FEEDS edges, grouped by parent, heaviest first."""
    return [
        StoredEdge(
            child=r["child"],
            parent=r["parent"],
            child_group_id=r["child_group_id"],
            parent_group_id=r["parent_group_id"],
            weight=float(r["weight"]),
            relation=r["relation"],
            relation_key=r["relation_key"],
        )
        for r in conn.run("label_edges", run_id=run_id)
    ]


def write_group_label(
    conn: Connection, group_id: str, *, label: str, description: str, model: str, prompt_version: str, key: str
) -> None:
    """Store one group's label, description, model, prompt version and key together, in one transaction."""
    with conn.writing():
        rows = conn.run("write_label_group", id=group_id, label=label, description=description, model=model,
                        prompt_version=prompt_version, key=key)
    if not rows or rows[0]["written"] != 1:
        raise StoreError(f"neuron group {group_id!r} is no longer stored (was its run loaded again?)")


def write_relation(
    conn: Connection, child: str, parent: str, *, relation: str, model: str, prompt_version: str, key: str
) -> None:
    """Store the relation of one FEEDS edge with its model, prompt version and key, in one transaction."""
    with conn.writing():
        rows = conn.run("write_label_relation", child=child, parent=parent, relation=relation, model=model,
                        prompt_version=prompt_version, key=key)
    if not rows or rows[0]["written"] < 1:
        raise StoreError(f"the edge {child!r} -> {parent!r} is no longer stored (was its run loaded again?)")


def _label_run(row: dict) -> LabelRun:
    path = row.get("bundle_path")
    return LabelRun(
        run_id=row["run_id"],
        class_id=row["class_id"],
        class_name=str(row["class_name"]),
        model=str(row["model"]),
        bundle_path=Path(path) if path else None,
    )
