"""What labelling reads from and writes to the graph: the run (as `show` picks it), its groups and edges, labels."""

from __future__ import annotations

from neurflow_graph.errors import ConfigError, QueryError, StoreError
from neurflow_graph.query.fetch import fetch_class, fetch_run_info
from neurflow_graph.records import Edge, Exemplar, Group, Run
from neurflow_graph.store.connection import Connection


def fetch_label_run(conn: Connection, class_ref: str, run_id: str | None = None) -> Run:
    """The run to label: `run_id` (checked against `class_ref`), else the class's latest complete run (as `show`)."""
    if run_id is None:
        run_id = str(fetch_class(conn, class_ref).latest_run)
        return fetch_run_info(conn, run_id)
    try:
        run = fetch_run_info(conn, run_id)
    except QueryError as exc:  # a run that is not stored: the store lacks it (load its bundle)
        raise StoreError(f"{exc}; `neurflow-graph load` its bundle first") from None
    if not run.complete:
        raise StoreError(f"run {run_id!r} is incomplete in the store (its ingest was interrupted); load it again")
    if class_ref not in (run.class_id, run.class_name, str(run.class_index)):
        raise ConfigError(f"run {run_id!r} is of class {run.class_id} ({run.class_name}), not {class_ref!r}")
    return run


def fetch_groups(conn: Connection, run_id: str) -> list[Group]:
    """The run's neuron groups, logit layer first, each with its exemplars in rank order."""
    groups = []
    for row in conn.run("label_groups", run_id=run_id):
        exemplars = sorted((e for e in row["exemplars"] if e is not None), key=lambda e: e[0])
        groups.append(
            Group(
                id=row["id"],
                group_id=row["group_id"],
                layer=row["layer"],
                layer_index=int(row["layer_index"]),
                group_index=int(row["group_index"]),
                is_root=row["is_root"] is True,
                exemplars=tuple(Exemplar(rank=int(e[0]), patch_id=int(e[1]), thumbnail=e[2]) for e in exemplars),
                label=row["label"],
                label_key=row["label_key"],
                run_id=run_id,
            )
        )
    return groups


def fetch_edges(conn: Connection, run_id: str) -> list[Edge]:
    """The run's FEEDS edges (group ids within the run), grouped by parent, heaviest first."""
    return [
        Edge(
            child=r["child_group_id"],
            parent=r["parent_group_id"],
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
