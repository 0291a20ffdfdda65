"""Thin typed helpers over the query files: each `fetch_<noun>` runs one or two `cypher/` files by name.

`conn` is anything with `.run(name, **params)` (a `neurflow_graph.store.Connection`). A class is given as its
id (`digits/3`), its index or its name; `fetch_class` turns it into the stored class (`records.resolve_class`,
the one rule) or a one-line error that lists the classes the store holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from neurflow_graph.errors import QueryError
from neurflow_graph.query.library import Runner, run_query
from neurflow_graph.query.results import (
    BiasPath,
    ClassCircuit,
    ClassFaithfulness,
    ClassSummary,
    ConceptPatch,
    EdgeChange,
    Evaluation,
    GroupDetail,
    GroupLink,
    GroupMatch,
    GroupShare,
    Intervention,
    LayerFaithfulness,
    NeuronRole,
    RunComparison,
    SharedGroup,
    SharedNeuron,
)
from neurflow_graph.records import ClassRef, Edge, Exemplar, Group, Records, Run, resolve_class
from neurflow_graph.store.shares import SHARES_FLOOR

_LISTED = 12  # classes or runs named in an error message before "… and N more"


def fetch_classes(conn: Runner) -> Records[ClassRef]:
    """Every class in the store with its run counts and latest complete run (`list_classes.cypher`)."""
    return Records(ClassRef, (ClassRef(**row) for row in run_query(conn, "list_classes")))


def fetch_class(conn: Runner, cls: str | int, model: str | None = None) -> ClassRef:
    """The stored class meant by `cls` (class id, index or name; `model` narrows it) with a complete run.

    Raises QueryError naming the classes that exist when none (or several) match, or when it has no complete run.
    A class id with a complete run is looked up alone (`class_info.cypher`), not by listing every class.
    """
    text = str(cls).strip()
    if "/" in text and model is None:
        rows = run_query(conn, "class_info", class_id=text)
        if rows and rows[0]["n_complete"] > 0:
            return ClassRef(**rows[0])
    classes = fetch_classes(conn)
    where = f" of model {model!r}" if model else ""
    info = resolve_class(text, classes, model, error=QueryError, unknown=f"class {{ref}}{where} is not in the store",
                         where=f"; {_class_list(classes)}")
    if info.n_complete == 0:
        raise QueryError(f"class {info.class_id} has {info.n_runs} run(s) in the store but none completed its "
                         f"ingest; load its bundle again; {_class_list(classes)}")
    return info


def fetch_class_circuit(conn: Runner, cls: str | int, run_id: str | None = None,
                        top_n: int | None = None) -> ClassCircuit:
    """The circuit of a class in one run (latest complete unless `run_id`): groups, then the top-N edges per parent."""
    info = fetch_class(conn, cls)
    rows = run_query(conn, "circuit_groups", class_id=info.class_id, run_id=run_id)
    if not rows:
        raise _no_such_run(conn, info, run_id)
    run = rows[0]["run_id"]
    bundle = rows[0]["bundle_path"]
    groups = tuple(_circuit_group(row, bundle) for row in rows)
    edges = tuple(Edge(**{k: v for k, v in row.items() if k != "run_id"})
                  for row in run_query(conn, "circuit_edges", class_id=info.class_id, run_id=run, top_n=top_n))
    return ClassCircuit(info.class_id, info.name, run, bundle, groups, edges, top_n)


def fetch_faithfulness(conn: Runner, cls: str | int, run_id: str | None = None) -> Records[LayerFaithfulness]:
    """How far to trust a class's circuit, per layer (`faithfulness.cypher`); empty when the run was not measured."""
    info = fetch_class(conn, cls)
    _check_run_of_class(conn, info, run_id)
    rows = run_query(conn, "faithfulness", class_id=info.class_id, run_id=run_id)
    return Records(LayerFaithfulness, (LayerFaithfulness(**row) for row in rows))


def fetch_faithfulness_classes(conn: Runner, model: str | None = None, max_z: float | None = None,
                               limit: int = 100) -> Records[ClassFaithfulness]:
    """Classes by their latest run's weakest-layer z, weakest first (`faithfulness_classes.cypher`)."""
    rows = run_query(conn, "faithfulness_classes", model=model, max_z=max_z, limit=limit)
    return Records(ClassFaithfulness, (ClassFaithfulness(**row) for row in rows))


def fetch_bias_paths(conn: Runner, cls: str | int, source: str | None = None, run_id: str | None = None,
                     min_weight: float = 0.0, limit: int = 20) -> Records[BiasPath]:
    """Strongest group paths up to the class logit, by Π|w| (`bias_paths.cypher`); `source` a group or neuron id."""
    info = fetch_class(conn, cls)
    _check_run_of_class(conn, info, run_id)
    rows = run_query(conn, "bias_paths", class_id=info.class_id, run_id=run_id, source=source,
                     min_weight=float(min_weight), limit=int(limit))
    return Records(BiasPath, (BiasPath(**{**row, "groups": tuple(row["groups"]), "weights": tuple(row["weights"])})
                             for row in rows))


def fetch_shared_groups(conn: Runner, min_jaccard: float = 0.5, layer: str | None = None,
                        cls: str | int | None = None, limit: int = 100) -> Records[SharedGroup]:
    """Group pairs of different classes ranked by neuron Jaccard (`shared_groups.cypher`)."""
    class_id = None if cls is None else fetch_class(conn, cls).class_id
    rows = run_query(conn, "shared_groups", min_jaccard=float(min_jaccard), layer=layer, class_id=class_id,
                     limit=int(limit))
    return Records(SharedGroup, (SharedGroup(**{**row, "shared_neurons": tuple(sorted(row["shared_neurons"]))})
                                for row in rows))


def why_no_shared_groups(conn: Runner, min_jaccard: float = 0.5, layer: str | None = None) -> str:
    """One line saying why `shared_groups` answered nothing: one class stored, or no pair reaching `min_jaccard`."""
    stored = [c for c in fetch_classes(conn) if c.n_complete > 0]
    if len(stored) < 2:
        held = f"only {stored[0].class_id}" if stored else "none"
        return (f"no shared groups: they pair groups of two different classes, and the store holds complete runs of "
                f"{held}; ingest another class (e.g. --classes 3,5,8)")
    where = f" in layer {layer}" if layer else ""
    return (f"no shared groups: no group of one of the {len(stored)} stored classes shares neurons{where} with a group "
            f"of another at Jaccard >= {min_jaccard:g} (pairs are stored from {SHARES_FLOOR:g}; lower min_jaccard)")


def fetch_shared_neurons(conn: Runner, layer: str, min_classes: int = 2, limit: int = 100) -> Records[SharedNeuron]:
    """Neurons of `layer` held by at least `min_classes` classes' circuits (`shared_neurons.cypher`)."""
    rows = run_query(conn, "shared_neurons", layer=layer, min_classes=int(min_classes), limit=int(limit))
    return Records(SharedNeuron, (SharedNeuron(**{**row, "classes": tuple(row["classes"])}) for row in rows))


def fetch_neuron_roles(conn: Runner, neuron_id: str) -> Records[NeuronRole]:
    """Every semantic group and neuron group of one neuron, class by class (`neuron_roles.cypher`)."""
    return Records(NeuronRole, (NeuronRole(**row) for row in run_query(conn, "neuron_roles", neuron_id=neuron_id)))


def fetch_exemplars(conn: Runner, group_id: str) -> Records[Exemplar]:
    """The exemplar patches of a group (node id `{run_id}/{group_id}`), best first (`group_exemplars.cypher`)."""
    return Records(Exemplar, (
        Exemplar(rank=row["rank"], patch_id=row["patch_id"], thumbnail=row["thumbnail"],
                 path=bundle_file(row["bundle_path"], row["thumbnail"]), image_index=row["image_index"],
                 granularity=row["granularity"], box=(row["x0"], row["y0"], row["x1"], row["y1"]))
        for row in run_query(conn, "group_exemplars", group_id=group_id)
    ))


def fetch_run_info(conn: Runner, run_id: str) -> Run:
    """A run's parameters and provenance (`run_provenance.cypher`); an unknown run lists the stored ones."""
    rows = run_query(conn, "run_provenance", run_id=run_id)
    if not rows:
        raise QueryError(f"run {run_id!r} is not in the store; {_run_list(conn)}")
    row = rows[0]
    props = dict(row["properties"])
    run_json = json.loads(props.get("run_json") or "{}")
    return Run(
        run_id=row["run_id"], complete=row["complete"] is True, class_id=row["class_id"],
        class_name=str(row["class_name"]), model=row["model"], created_at=props.get("created_at"),
        ingested_at=props.get("ingested_at"), completed_at=props.get("completed_at"),
        bundle_path=props.get("bundle_path"), layers=tuple(props.get("layers") or ()), run_json=run_json,
        properties=props,  # the parameters and any layers missing here come from the typed record (`Run.meta`)
    )


def fetch_runs(conn: Runner) -> Records[Run]:
    """Every stored run, newest first; `complete` is False while (or after an interrupted) ingest (`list_runs`)."""
    return Records(Run, (
        Run(run_id=r["run_id"], complete=r["complete"] is True, class_id=r["class_id"],
            class_name=str(r["class_name"]), model=r["model"], created_at=r["created_at"])
        for r in run_query(conn, "list_runs")
    ))


def fetch_run_status(conn: Runner, run_id: str) -> dict[str, Any] | None:
    """Completeness and recorded counts of one run, or None when it is not stored (`run_status.cypher`)."""
    rows = run_query(conn, "run_status", run_id=run_id)
    return rows[0] if rows else None


def fetch_circuit_table(conn: Runner, class_id: str) -> pa.Table:
    """The FEEDS edges of a class's complete runs, one row per edge, as a table (`circuit_of_class.cypher`)."""
    return pa.Table.from_pylist(run_query(conn, "circuit_of_class", class_id=class_id))


def fetch_run_comparison(conn: Runner, run_a: str, run_b: str, min_jaccard: float = 0.5,
                         tolerance: float = 1e-9) -> RunComparison:
    """Groups and edges of two runs compared under the Jaccard matching rule (`compare_run_*.cypher`)."""
    for run_id in (run_a, run_b):
        fetch_run_info(conn, run_id)
    groups = tuple(
        GroupMatch(**{**row, "neurons_a": _tuple(row["neurons_a"]), "neurons_b": _tuple(row["neurons_b"])})
        for row in run_query(conn, "compare_run_groups", run_a=run_a, run_b=run_b, min_jaccard=float(min_jaccard))
    )
    edges = tuple(EdgeChange(**row) for row in run_query(
        conn, "compare_run_edges", run_a=run_a, run_b=run_b, min_jaccard=float(min_jaccard),
        tolerance=float(tolerance)))
    return RunComparison(run_a, run_b, float(min_jaccard), groups, edges)


def fetch_layer_groups(conn: Runner, cls: str | int, layer: str, run_id: str | None = None) -> Records[Group]:
    """The groups of one layer with channels and activation_max (`layer_groups.cypher`), for image debugging."""
    info = fetch_class(conn, cls)
    _check_run_of_class(conn, info, run_id)
    rows = run_query(conn, "layer_groups", class_id=info.class_id, run_id=run_id, layer=layer)
    if not rows:
        run = fetch_run_info(conn, run_id or str(info.latest_run))
        with_groups = [row["layer"] for row in _layers_with_groups(conn, info.class_id, run.run_id)]
        raise QueryError(f"layer {layer!r} has no neuron groups in run {run.run_id}; layers with groups: "
                         f"{', '.join(with_groups) or 'none'}")
    return Records(Group, (
        Group(run_id=row["run_id"], id=row["id"], group_id=row["group_id"], layer=row["layer"],
              layer_index=row["layer_index"], group_index=row["group_index"], is_root=False,
              neurons=tuple(row["neurons"]), channels=tuple(int(c) for c in row["channels"]),
              activation_max=tuple(float(a) for a in row["activation_max"]),
              weight_up=float(row["weight_up"] or 0.0), label=row["label"], description=row["description"])
        for row in rows if not row["is_root"]
    ))


def fetch_interventions(conn: Runner, cls: str | int, run_id: str | None = None) -> Records[Intervention]:
    """The image-debugging results stored for a class's circuit (`interventions.cypher`)."""
    info = fetch_class(conn, cls)
    _check_run_of_class(conn, info, run_id)
    return Records(Intervention, (Intervention(**row) for row in run_query(conn, "interventions",
                                                                          class_id=info.class_id, run_id=run_id)))


def fetch_class_index(conn: Runner) -> Records[ClassSummary]:
    """Every class with its latest complete run's size, status and dates, in one query (`class_index.cypher`)."""
    return Records(ClassSummary, (ClassSummary(**row) for row in run_query(conn, "class_index")))


def fetch_group(conn: Runner, group_id: str) -> GroupDetail:
    """One group by node id (`{run_id}/{group_id}`) with its run, class, parents and children (`group_detail`).

    An unknown id is a QueryError.
    """
    rows = run_query(conn, "group_detail", group_id=group_id)
    if not rows:
        raise QueryError(f"group {group_id!r} is not in the store; a group id is {{run_id}}/{{layer}}/g{{index}}, "
                         "e.g. from `neurflow-graph query circuit_groups`")
    row = rows[0]
    group = Group(id=row["id"], group_id=row["group_id"], layer=row["layer"], layer_index=row["layer_index"],
                  group_index=row["group_index"], is_root=row["is_root"] is True, neurons=tuple(row["neurons"] or ()),
                  label=row["label"], description=row["description"], run_id=row["run_id"])

    def links(items: list[list[Any]]) -> tuple[GroupLink, ...]:
        found = (GroupLink(*item) for item in items if item is not None)
        return tuple(sorted(found, key=lambda link: (-abs(link.weight or 0.0), link.id)))

    return GroupDetail(group, row["run_id"], row["class_id"], str(row["class_name"]), row["latest"] is True,
                       row["complete"] is True, row["bundle_path"], links(row["parents"]), links(row["children"]))


def fetch_group_shares(conn: Runner, group_id: str, min_jaccard: float = 0.0, limit: int = 50) -> Records[GroupShare]:
    """Groups of other runs sharing neurons with group `group_id` (node id), by Jaccard (`group_shares.cypher`)."""
    rows = run_query(conn, "group_shares", group_id=group_id, min_jaccard=float(min_jaccard), limit=int(limit))
    return Records(GroupShare, (GroupShare(**{**row, "class_name": str(row["class_name"]),
                                              "shared_neurons": tuple(sorted(row["shared_neurons"] or ()))})
                                for row in rows))


def fetch_neuron_patches(conn: Runner, neuron_id: str, per_group: int = 6) -> Records[ConceptPatch]:
    """The first patches of each semantic group (concept) of a neuron in every complete run (`neuron_patches`)."""
    rows = run_query(conn, "neuron_patches", neuron_id=neuron_id, per_group=int(per_group))
    box = ("x0", "y0", "x1", "y1")
    return Records(ConceptPatch, (ConceptPatch(**{k: v for k, v in row.items() if k not in (*box, "class_name")},
                                               class_name=str(row["class_name"]),
                                               path=bundle_file(row["bundle_path"], row["thumbnail"]),
                                               box=tuple(row[k] for k in box) if row["x0"] is not None else None)
                                  for row in rows))


def fetch_evaluations(conn: Runner, run_id: str) -> Records[Evaluation]:
    """The evaluation results stored on a run (`run_evaluations.cypher`)."""
    return Records(Evaluation, (Evaluation(id=row["id"], run_id=run_id, properties=dict(row["properties"]))
                                for row in run_query(conn, "run_evaluations", run_id=run_id)))


def bundle_file(bundle_path: str | None, relative: str | None) -> Path | None:
    """`bundle_path/relative` when both are known and the file exists (a moved bundle gives None)."""
    if not bundle_path or not relative:
        return None
    path = Path(bundle_path) / relative
    return path if path.is_file() else None


def _circuit_group(row: dict[str, Any], bundle: str | None) -> Group:
    exemplars = tuple(
        Exemplar(rank=e["rank"], patch_id=e["patch_id"], thumbnail=e["thumbnail"],
                 path=bundle_file(bundle, e["thumbnail"]))
        for e in sorted(row["exemplars"], key=lambda e: e["rank"])
    )
    return Group(id=row["id"], group_id=row["group_id"], layer=row["layer"], layer_index=row["layer_index"],
                        group_index=row["group_index"], is_root=row["is_root"] is True,
                        neurons=tuple(row["neurons"]), exemplars=exemplars, label=row["label"],
                        description=row["description"])


def _layers_with_groups(conn: Runner, class_id: str, run_id: str) -> list[dict[str, Any]]:
    rows = run_query(conn, "circuit_groups", class_id=class_id, run_id=run_id)
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not row["is_root"]:
            seen.setdefault(row["layer"], row)
    return list(seen.values())


def _check_run_of_class(conn: Runner, info: ClassRef, run_id: str | None) -> None:
    if run_id is None:
        return
    runs = [r for r in run_query(conn, "list_runs") if r["class_id"] == info.class_id]
    if not any(r["run_id"] == run_id and r["complete"] is True for r in runs):
        raise _no_such_run(conn, info, run_id)


def _no_such_run(conn: Runner, info: ClassRef, run_id: str | None) -> QueryError:
    runs = [r["run_id"] for r in run_query(conn, "list_runs") if r["class_id"] == info.class_id and r["complete"]]
    if run_id is None:
        return QueryError(f"class {info.class_id} has no complete run in the store")
    return QueryError(f"run {run_id!r} is not a complete run of class {info.class_id}; its complete runs "
                      f"(newest first): {', '.join(runs) or 'none'}")


def _class_list(classes: list[ClassRef]) -> str:
    ingested = [c for c in classes if c.n_complete > 0]
    if not ingested:
        return "the store holds no complete run yet (ingest or load one first)"
    names = [c.class_id if c.name == str(c.index) else f"{c.class_id} ({c.name})" for c in ingested]
    more = f" … and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return f"classes in the store: {', '.join(names[:_LISTED])}{more}"


def _run_list(conn: Runner) -> str:
    runs = [r["run_id"] for r in run_query(conn, "list_runs")]
    if not runs:
        return "the store holds no run yet"
    more = f" … and {len(runs) - _LISTED} more" if len(runs) > _LISTED else ""
    return f"runs in the store (newest first): {', '.join(runs[:_LISTED])}{more}"


def _tuple(value: list[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)
