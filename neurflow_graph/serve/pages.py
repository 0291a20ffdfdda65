"""What each page of the explorer shows, read through the query layer: one function per page, each answering
with a plain dict (the JSON twin) and recording the queries it ran (shown under every page).

A thing that is not in the store (class, group, run, neuron) raises `NotFound`, which the app turns into a page
saying so (HTTP 404). Nothing here writes to the store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from neurflow_graph.errors import QueryError
from neurflow_graph.ids import group_node_id
from neurflow_graph.query.fetch import (
    fetch_bias_paths,
    fetch_class,
    fetch_class_circuit,
    fetch_evaluations,
    fetch_exemplars,
    fetch_faithfulness,
    fetch_group,
    fetch_group_shares,
    fetch_interventions,
    fetch_neuron_patches,
    fetch_neuron_roles,
    fetch_run_info,
    fetch_shared_groups,
)
from neurflow_graph.query.library import Runner, run_query
from neurflow_graph.query.results import ClassSummary, LayerFaithfulness
from neurflow_graph.records import Exemplar, Group, to_jsonable
from neurflow_graph.render.circuit import BACKGROUND_NOTE, circuit_svg
from neurflow_graph.render.faithfulness import layer_verdict
from neurflow_graph.store import queries
from neurflow_graph.store.shares import SHARES_FLOOR

PAGE_SIZE = 50
SORTS = ("index", "name", "groups", "date")
"""Orders of the index page (`?sort=`; class_index_page.cypher sorts): by model and index, name, most groups
first, completion date; `-` in front reverses one."""
MAX_GROUPS = 12
"""Groups drawn per layer on a class page before the strongest are kept (`?all=1` draws every one)."""
COMPARE_WRAP = 4
"""Groups per row in the two drawings side by side on the compare page."""
SHARED_MIN_JACCARD = 0.5
PARALLEL = 6
"""Queries of one page run at once (the driver's connection pool serves them)."""
"""Jaccard from which two groups of different classes count as shared on the class and compare pages."""


class NotFound(Exception):
    """A class, group, run or neuron the store does not hold; the message says which, in one line."""


@dataclass
class Recorder:
    """A Runner that remembers every query file it ran and with which parameters (shown under the page), and
    answers a repeated call (the helpers each resolve the class again) from memory: a page only reads."""

    conn: Runner
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _answers: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        key = (name, json.dumps(to_jsonable(params), sort_keys=True, default=str))
        with self._lock:
            if key in self._answers:
                return list(self._answers[key])
            self.calls.append((name, dict(params)))
        rows = self.conn.run(name, **params)
        with self._lock:
            self._answers[key] = rows
        return list(rows)

    def cypher(self) -> list[dict[str, Any]]:
        """Each query as its name, Cypher text and parameters, in the order run."""
        out = []
        for name, params in self.calls:
            text = ";\n".join(queries.load(name).statements)
            out.append({"name": name, "cypher": text, "params": to_jsonable(params),
                        "browser_params": ":params " + json.dumps(to_jsonable(params), default=str)})
        return out


@dataclass(frozen=True)
class Urls:
    """How pages name each other: every link a page holds is built here (stable, paste-able URLs)."""

    def cls(self, class_id: str, run_id: str | None = None) -> str:
        return f"/class/{class_id}" + (f"?run={run_id}" if run_id else "")

    def group(self, node_id: str) -> str:
        return f"/group/{node_id}"

    def neuron(self, neuron_id: str) -> str:
        return f"/neuron/{neuron_id}"

    def run(self, run_id: str) -> str:
        return f"/run/{run_id}"

    def section(self, class_id: str, section: str, run_id: str | None = None) -> str:
        """A secondary section of a class page on its own (HTML; `.json` before the query for its data)."""
        return f"/class/{class_id}/{section}" + (f"?run={run_id}" if run_id else "")

    def compare(self, a: str, b: str) -> str:
        return f"/compare?a={a}&b={b}"

    def thumb(self, run_id: str, relative: str) -> str:
        return f"/thumb/{run_id}/{relative}"

    def crop(self, run_id: str, image_index: int, box: tuple[int, int, int, int]) -> str:
        """A patch cut from the run's image as the bundle keeps it (`images/{i}.png`, docs/artifacts.md)."""
        return f"/crop/{run_id}/images/{int(image_index)}.png?box={','.join(str(int(v)) for v in box)}"


URLS = Urls()


def _found(fn: Callable[[], Any]) -> Any:
    """`fn()`, a QueryError (unknown class or run) turned into NotFound."""
    try:
        return fn()
    except QueryError as exc:
        raise NotFound(str(exc)) from None


def _thumbnail(run_id: str) -> Callable[[Group, Exemplar], str | None]:
    """The URL of an exemplar's thumbnail, or None (a grey box) when the file is not where the run says."""
    return lambda g, e: URLS.thumb(run_id, e.thumbnail) if e.path is not None and e.thumbnail else None


def index_page(conn: Runner, q: str = "", sort: str = "index", page: int = 1) -> dict[str, Any]:
    """Models, and their classes (searched by name, index or id; sorted; one page of PAGE_SIZE): the store sorts
    and cuts the page (`class_index_page.cypher`) and counts (`class_index_counts.cypher`), so only a page of
    rows comes back however many classes it holds."""
    key = sort.lstrip("-")
    if key not in SORTS:
        raise NotFound(f"unknown sort {sort!r}; sorts: {', '.join(SORTS)} (prefix - to reverse)")
    text = q.strip().lower() or None
    counts = run_query(conn, "class_index_counts", q=text)
    n_matching = sum(int(r["n_matching"]) for r in counts)
    pages = max(1, -(-n_matching // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = run_query(conn, "class_index_page", q=text, sort=key, descending=sort.startswith("-"),
                     skip=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    shown = [ClassSummary(**row) for row in rows]
    return {"models": [{"model": r["model"], "n_classes": int(r["n_classes"]), "n_complete": int(r["n_complete"])}
                       for r in counts],
            "q": q, "sort": sort, "page": page, "pages": pages, "n_matching": n_matching, "sorts": list(SORTS),
            "classes": [{**to_jsonable(c), "status": c.status, "url": URLS.cls(c.class_id)} for c in shown]}


CLASS_SECTIONS = ("bias", "sharing", "faithfulness", "results")
"""The class page's secondary sections, each at its own URL (`/class/{id}/{section}` and `.json`): the HTML page
sends the circuit first and its script fetches these after it has loaded."""


def class_page(conn: Runner, class_id: str, run_id: str | None = None, top_n: int | None = None,
               show_all: bool = False, exemplars: int = 3, sections: Sequence[str] = CLASS_SECTIONS) -> dict[str, Any]:
    """The circuit of a class drawn with links and thumbnails, and its `sections` (by default all: its bias paths,
    the classes it shares most groups with, its faithfulness, the debugging and evaluation results of its run)."""
    info = _found(lambda: fetch_class(conn, class_id))
    run_of_page = str(run_id or info.latest_run)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:  # the page's reads do not wait for each other
        circuit_f = pool.submit(fetch_class_circuit, conn, info.class_id, run_id=run_id, top_n=top_n)
        run_f = pool.submit(fetch_run_info, conn, run_of_page)
        parts = {name: pool.submit(_SECTIONS[name], conn, info.class_id, run_id, run_of_page) for name in sections}
        circuit, run = _found(circuit_f.result), _found(run_f.result)
        got = {name: _found(future.result) for name, future in parts.items()}
    drawing = circuit_svg(circuit, exemplars, max_groups=None if show_all else MAX_GROUPS,
                          thumbnail=_thumbnail(circuit.run_id), link=lambda g: URLS.group(g.id))
    page = {
        "class": to_jsonable(info), "run": _run_summary(run), "top": top_n, "all": show_all,
        "n_groups": len(circuit.groups), "n_edges": len(circuit.edges),
        "drawn_groups": len(drawing.groups), "hidden": drawing.hidden, "missing_thumbnails": drawing.missing,
        "bundle_path": circuit.bundle_path, "background_note": BACKGROUND_NOTE,
        "svg": drawing.svg,
        "groups": [_group_row(g) for g in circuit.groups],
        "edges": [to_jsonable(e) for e in circuit.edges],
        "sections": {name: URLS.section(info.class_id, name, run_id) for name in CLASS_SECTIONS if name not in got},
    }
    for answer in got.values():
        page.update(answer)
    return page


def class_section(conn: Runner, class_id: str, section: str, run_id: str | None = None) -> dict[str, Any]:
    """One secondary section of a class page (a name of CLASS_SECTIONS), with the class and run it is of."""
    if section not in _SECTIONS:
        raise NotFound(f"a class page has no section {section!r}; sections: {', '.join(CLASS_SECTIONS)}")
    info = _found(lambda: fetch_class(conn, class_id))
    run_of_page = str(run_id or info.latest_run)
    return {"class": to_jsonable(info), "section": section, "run_id": run_of_page,
            "page_url": URLS.cls(info.class_id, run_id), **_found(lambda: _SECTIONS[section](conn, info.class_id,
                                                                                              run_id, run_of_page))}


def _bias_section(conn: Runner, class_id: str, run_id: str | None, run_of_page: str) -> dict[str, Any]:
    bias = fetch_bias_paths(conn, class_id, run_id=run_id, limit=10)
    return {"bias_paths": [{**to_jsonable(p), "links": [URLS.group(group_node_id(run_of_page, g)) for g in p.groups]}
                           for p in bias]}


def _sharing_section(conn: Runner, class_id: str, run_id: str | None, run_of_page: str) -> dict[str, Any]:
    return {"sharing_classes": _sharing_classes(conn, class_id)}


def _faithfulness_section(conn: Runner, class_id: str, run_id: str | None, run_of_page: str) -> dict[str, Any]:
    return {"faithfulness": _faithfulness(fetch_faithfulness(conn, class_id, run_id=run_id))}


def _results_section(conn: Runner, class_id: str, run_id: str | None, run_of_page: str) -> dict[str, Any]:
    return {"interventions": [to_jsonable(i) for i in fetch_interventions(conn, class_id, run_id=run_id)],
            "evaluations": [to_jsonable(e) for e in fetch_evaluations(conn, run_of_page)]}  # more stored results: here


_SECTIONS: dict[str, Callable[[Runner, str, str | None, str], dict[str, Any]]] = {
    "bias": _bias_section, "sharing": _sharing_section, "faithfulness": _faithfulness_section,
    "results": _results_section,
}


def _faithfulness(layers: Sequence[LayerFaithfulness]) -> dict[str, Any] | None:
    """The run's stored faithfulness (measured at ingest): its verdict, and each layer with its verdict in words;
    None when the run was ingested with --faithfulness off."""
    if not layers:
        return None
    rows = [{**to_jsonable(r), "in_words": layer_verdict(to_jsonable(r))} for r in layers]
    return {"verdict": layers[0].verdict, "sets": layers[0].sets, "seed": layers[0].seed, "layers": rows}


def _run_summary(run: Any) -> dict[str, Any]:
    p = run.meta.params if run.meta is not None else None
    return {"run_id": run.run_id, "complete": run.complete, "created_at": run.created_at,
            "completed_at": run.completed_at, "bundle_path": run.bundle_path, "layers": list(run.layers),
            "params": {"k": p.k, "tau": p.tau, "n_steps": p.n_steps, "seed": p.seed} if p is not None else {},
            "url": URLS.run(run.run_id)}


def _group_row(g: Group) -> dict[str, Any]:
    return {"id": g.id, "group_id": g.group_id, "layer": g.layer, "layer_index": g.layer_index,
            "is_root": g.is_root, "n_neurons": len(g.neurons), "neurons": list(g.neurons), "label": g.label,
            "description": g.description, "url": URLS.group(g.id)}


def _sharing_classes(conn: Runner, class_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """Other classes by how many of this class's groups they share (Jaccard >= SHARED_MIN_JACCARD)."""
    pairs = fetch_shared_groups(conn, min_jaccard=SHARED_MIN_JACCARD, cls=class_id, limit=1000)
    counts: dict[str, dict[str, Any]] = {}
    for p in pairs:
        mine, other = (p.group_a, p.class_b) if p.class_a == class_id else (p.group_b, p.class_a)
        entry = counts.setdefault(other, {"class_id": other, "groups": set(), "best_jaccard": 0.0})
        entry["groups"].add(mine)
        entry["best_jaccard"] = max(entry["best_jaccard"], p.jaccard)
    ranked = sorted(counts.values(), key=lambda e: (-len(e["groups"]), -e["best_jaccard"], e["class_id"]))[:limit]
    return [{"class_id": e["class_id"], "shared_groups": len(e["groups"]), "best_jaccard": e["best_jaccard"],
             "url": URLS.cls(e["class_id"]), "compare": URLS.compare(class_id, e["class_id"])} for e in ranked]


def group_page(conn: Runner, node_id: str) -> dict[str, Any]:
    """A group: its exemplars (larger), member neurons, label, parents and children, and the groups of other
    classes sharing its neurons."""
    detail = _found(lambda: fetch_group(conn, node_id))
    found = {True: 0, False: 0}
    exemplars = []
    for e in fetch_exemplars(conn, node_id):
        found[e.path is not None] += 1
        exemplars.append({**to_jsonable(e), "url": URLS.thumb(detail.run_id, e.thumbnail)
                          if e.path is not None and e.thumbnail else None})
    shares = fetch_group_shares(conn, node_id)
    g = detail.group
    return {
        "group": {**_group_row(g), "run_id": detail.run_id},
        "class": {"class_id": detail.class_id, "name": detail.class_name, "url": URLS.cls(detail.class_id)},
        "run": {"run_id": detail.run_id, "latest": detail.latest, "complete": detail.complete,
                "bundle_path": detail.bundle_path, "url": URLS.run(detail.run_id)},
        "neurons": [{"id": n, "url": URLS.neuron(n)} for n in g.neurons],
        "exemplars": exemplars, "missing_thumbnails": found[False], "background_note": BACKGROUND_NOTE,
        "shares_floor": SHARES_FLOOR,
        "parents": [{**to_jsonable(p), "url": URLS.group(p.id)} for p in detail.parents],
        "children": [{**to_jsonable(c), "url": URLS.group(c.id)} for c in detail.children],
        "shares": [{**to_jsonable(s), "url": URLS.group(s.id), "class_url": URLS.cls(s.class_id),
                    "compare": URLS.compare(detail.class_id, s.class_id)} for s in shares],
    }


def neuron_page(conn: Runner, neuron_id: str) -> dict[str, Any]:
    """A neuron: its concept patches in each run holding it, and the groups it belongs to across classes."""
    roles = fetch_neuron_roles(conn, neuron_id)
    patches = fetch_neuron_patches(conn, neuron_id)
    if not roles and not patches:
        raise NotFound(f"no complete run in the store holds neuron {neuron_id!r} (a neuron id is "
                       "{model}/{layer}/{channel}, e.g. from a group page)")
    concepts: dict[tuple[str, str], dict[str, Any]] = {}
    for p in patches:
        c = concepts.setdefault((p.run_id, p.semantic_group), {
            "class_id": p.class_id, "class_name": p.class_name, "run_id": p.run_id, "latest": p.latest,
            "semantic_group": p.semantic_group, "n_patches": p.n_patches, "patches": [],
            "class_url": URLS.cls(p.class_id, None if p.latest else p.run_id)})
        if p.path is not None and p.thumbnail:
            url = URLS.thumb(p.run_id, p.thumbnail)
        elif p.image_index is not None and p.box is not None and p.bundle_path:
            url = URLS.crop(p.run_id, p.image_index, p.box)  # no thumbnail kept: cut from its image
        else:
            url = None
        c["patches"].append({"patch_id": p.patch_id, "rank": p.rank, "thumbnail": p.thumbnail, "url": url,
                             "bundle_path": p.bundle_path})
    return {"neuron_id": neuron_id, "concepts": list(concepts.values()),
            "roles": [{**to_jsonable(r), "class_url": URLS.cls(r.class_id),
                       "group_url": URLS.group(r.group_node) if r.group_node else None} for r in roles]}


def run_page(conn: Runner, run_id: str) -> dict[str, Any]:
    """A run: its class, status, parameters and provenance."""
    run = _found(lambda: fetch_run_info(conn, run_id))
    return {"run": {**_run_summary(run), "class_id": run.class_id, "class_name": run.class_name,
                    "model": run.model, "params": run.params}, "class_url": URLS.cls(run.class_id, run.run_id)}


def compare_page(conn: Runner, a: str, b: str, exemplars: int = 2) -> dict[str, Any]:
    """Two classes side by side: the groups they share (Jaccard >= SHARED_MIN_JACCARD) and both circuits, with the
    shared groups marked."""
    if not a or not b:
        raise NotFound("compare needs two classes: /compare?a=CLASS&b=CLASS (ids, indices or names)")
    info_a = _found(lambda: fetch_class(conn, a))
    info_b = _found(lambda: fetch_class(conn, b))
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        drawn = {c.class_id: pool.submit(fetch_class_circuit, conn, c.class_id) for c in (info_a, info_b)}
        shared = pool.submit(fetch_shared_groups, conn, min_jaccard=SHARED_MIN_JACCARD, cls=info_a.class_id,
                             limit=1000)
        circuits = {k: _found(f.result) for k, f in drawn.items()}
        pairs = [p for p in _found(shared.result) if {p.class_a, p.class_b} == {info_a.class_id, info_b.class_id}]
    groups = {g.id: g for c in circuits.values() for g in c.groups}
    run_of = {g.id: c.run_id for c in circuits.values() for g in c.groups}
    rows = []
    for p in pairs:
        ga, gb = (p.group_a, p.group_b) if p.class_a == info_a.class_id else (p.group_b, p.group_a)
        rows.append({"layer": p.layer, "jaccard": p.jaccard, "shared": p.shared,
                     "shared_neurons": list(p.shared_neurons),
                     "a": _side(groups.get(ga), ga, run_of.get(ga), exemplars),
                     "b": _side(groups.get(gb), gb, run_of.get(gb), exemplars)})
    shared_ids = {r["a"]["id"] for r in rows} | {r["b"]["id"] for r in rows}
    sides = []
    for info in (info_a, info_b):
        circuit = circuits[info.class_id]
        drawing = circuit_svg(circuit, exemplars, max_groups=MAX_GROUPS, thumbnail=_thumbnail(circuit.run_id),
                              link=lambda g: URLS.group(g.id), wrap=COMPARE_WRAP, marked=frozenset(shared_ids))
        sides.append({"class": to_jsonable(info), "run_id": circuit.run_id, "url": URLS.cls(info.class_id),
                      "n_groups": len(circuit.groups), "svg": drawing.svg})
    return {"a": sides[0], "b": sides[1], "min_jaccard": SHARED_MIN_JACCARD, "pairs": rows,
            "swap": URLS.compare(info_b.class_id, info_a.class_id)}


def _side(group: Group | None, node_id: str, run_id: str | None, exemplars: int) -> dict[str, Any]:
    thumbs = []
    if group is not None and run_id is not None:
        thumbs = [URLS.thumb(run_id, e.thumbnail) if e.path is not None and e.thumbnail else None
                  for e in group.exemplars[:exemplars]]
    return {"id": node_id, "group_id": group.group_id if group else node_id, "label": group.label if group else None,
            "n_neurons": len(group.neurons) if group else None, "url": URLS.group(node_id), "thumbnails": thumbs}
