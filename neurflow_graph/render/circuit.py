"""The circuit of a class as one self-contained HTML page: layers as rows, groups as nodes, weighted edges.

Hand-written layout, inline SVG, thumbnails as base64 data URIs: no script, no CDN, no network. Rows run
from the logit (top) down; within a row, groups are ordered by the weighted mean position of the groups they
feed (a barycentre pass), so strong edges stay short. Edge width grows with |weight| relative to the
strongest edge into the same layer; blue edges excite the parent, red ones inhibit it.

A layer of more than `WRAP` groups wraps onto several rows, so the drawing keeps its natural size (it scrolls
rather than shrinking to the window). With `top_n` (`show --top N`) only the groups on kept edges' paths to the
logit are drawn; `max_groups` keeps each layer's strongest groups (by |weight| into the kept layer above) and
says how many it left out. `circuit_svg` is the drawing alone, used by `show` and by `neurflow-graph serve`
(which links nodes and serves thumbnails by URL).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neurflow_graph.ids import channel_of
from neurflow_graph.query.results import ClassCircuit
from neurflow_graph.records import HTML_VIEWS, Edge, Exemplar, Group, Run
from neurflow_graph.render.faithfulness import faithfulness_html
from neurflow_graph.render.images import file_uri

THUMB = 40
THUMB_GAP = 3
PAD = 8
CAPTION = 36
ROW_GAP = 120
NODE_GAP = 28
LEFT = 110
TOP = 24
POSITIVE = "#2b6cb0"
NEGATIVE = "#c53030"
MAX_EDGE_WIDTH = 9.0
EDGE_LABEL_LIMIT = 16  # up to this many edges all weights are printed; above, only each parent's strongest
WRAP = 7  # groups per row: a wider layer wraps onto further rows (a row of 7 fits a 1400-px window)
SUB_ROW_GAP = 46  # between the rows of one wrapped layer
BACKGROUND_NOTE = ("A solid-black thumbnail is a background patch: a crop of a dark, empty part of the image (the "
                   "digits are white strokes on black) that the group's neurons also respond to; not a missing "
                   "picture.")


@dataclass(frozen=True)
class _Node:
    group: Group
    x: float  # left
    y: float  # top
    width: float
    height: float

    @property
    def cx(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Drawing:
    """A circuit drawn as SVG: the markup, the groups and edges drawn, and how many groups each layer left out."""

    svg: str
    groups: tuple[Group, ...]
    edges: tuple[Edge, ...]
    hidden: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    """Exemplar thumbnails recorded but not found (grey boxes)."""

    @property
    def n_hidden(self) -> int:
        """Groups left out over all layers."""
        return sum(self.hidden.values())


def drawn_groups(circuit: ClassCircuit, max_groups: int | None = None) -> tuple[list[Group], dict[str, int]]:
    """The groups to draw and, per layer, how many were left out.

    With `circuit.top_n` a group is drawn only when a kept edge path leads from it to the logit; with `max_groups`
    each layer keeps its strongest groups by the summed |weight| of their edges into the groups kept above.
    """
    into: dict[str, list[Edge]] = {}
    for e in circuit.edges:
        into.setdefault(e.child, []).append(e)
    kept: set[str] = set()
    out: list[Group] = []
    hidden: dict[str, int] = {}
    for row, (layer, groups) in enumerate(circuit.layers()):
        if row == 0:
            chosen = list(groups)
        else:
            def strength(g: Group) -> float:
                return sum(abs(e.weight) for e in into.get(g.group_id, []) if e.parent in kept)

            chosen = [g for g in groups
                      if circuit.top_n is None or any(e.parent in kept for e in into.get(g.group_id, []))]
            if max_groups is not None and len(chosen) > max_groups:
                best = sorted(chosen, key=lambda g: (-strength(g), g.group_index))[:max(max_groups, 1)]
                chosen = [g for g in chosen if g in best]
        if len(chosen) < len(groups):
            hidden[layer] = len(groups) - len(chosen)
        kept.update(g.group_id for g in chosen)
        out.extend(chosen)
    return out, hidden


def circuit_svg(circuit: ClassCircuit, exemplars: int = 4, *, max_groups: int | None = None,
                thumbnail: Callable[[Group, Exemplar], str | None] | None = None,
                link: Callable[[Group], str] | None = None, wrap: int = WRAP,
                marked: frozenset[str] = frozenset()) -> Drawing:
    """The circuit as an SVG `Drawing`; `thumbnail` gives each exemplar's image URL (default: the file inlined as a
    data URI), `link` each group's URL (nodes become links); nodes and edges carry `data-group`/`data-child`/
    `data-parent` for scripts; a layer of more than `wrap` groups takes several rows; the groups whose node id is
    in `marked` get the class `shared`."""
    groups, hidden = drawn_groups(circuit, max_groups)
    nodes, width, height = _layout(circuit, groups, exemplars, max(wrap, 1))
    image = thumbnail or _inline_thumbnail
    svg = _svg(circuit, nodes, width, height, exemplars, image, link, marked)
    drawn = {g.group_id for g in groups}
    edges = tuple(e for e in circuit.edges if e.child in drawn and e.parent in drawn)
    missing = sum(1 for g in groups for e in g.exemplars[:exemplars] if image(g, e) is None)
    return Drawing(svg, tuple(groups), edges, hidden, missing)


def render_circuit_html(circuit: ClassCircuit, run: Run | None = None, exemplars: int = 4,
                        max_groups: int | None = None) -> str:
    """The page as a string (see the module docstring); `run` adds the run's parameters to the header."""
    drawing = circuit_svg(circuit, exemplars, max_groups=max_groups)
    return _page(circuit, run, drawing, exemplars)


def _inline_thumbnail(group: Group, exemplar: Exemplar) -> str | None:

    return file_uri(exemplar.path) if exemplar.path is not None else None


def notebook_html(circuit: ClassCircuit) -> str:
    """The page in an iframe, so its styles stay inside it (Jupyter's inline view of a ClassCircuit)."""
    page = html.escape(render_circuit_html(circuit), quote=True)
    return (f'<iframe srcdoc="{page}" style="width:100%;height:640px;border:1px solid #e2e8f0" '
            'onload="this.style.height=(this.contentDocument.body.scrollHeight+24)+\'px\'"></iframe>')


HTML_VIEWS[ClassCircuit] = notebook_html


def write_circuit_html(circuit: ClassCircuit, path: str | os.PathLike[str], run: Run | None = None,
                       exemplars: int = 4, max_groups: int | None = None) -> Path:
    """Write the page to `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_circuit_html(circuit, run, exemplars, max_groups), encoding="utf-8")
    return path


def _node_size(exemplars: int) -> tuple[float, float]:
    thumbs = max(exemplars, 0)
    width = max(132.0, thumbs * (THUMB + THUMB_GAP) - THUMB_GAP + 2 * PAD)
    height = CAPTION + (THUMB + PAD if thumbs else 0) + PAD / 2
    return width, height


def _layout(circuit: ClassCircuit, drawn: list[Group], exemplars: int,
            wrap: int = WRAP) -> tuple[dict[str, _Node], float, float]:
    """Node boxes, rows from the logit down; a layer wider than `wrap` groups takes several rows."""
    node_w, node_h = _node_size(exemplars)
    chosen = {g.group_id for g in drawn}
    layers = [(layer, [g for g in groups if g.group_id in chosen]) for layer, groups in circuit.layers()]
    layers = [(layer, groups) for layer, groups in layers if groups]
    parents_of: dict[str, list[Edge]] = {}
    for edge in circuit.edges:
        parents_of.setdefault(edge.child, []).append(edge)
    widest = min(max((len(groups) for _, groups in layers), default=1), wrap)
    canvas = LEFT + widest * (node_w + NODE_GAP) - NODE_GAP + PAD * 2
    centre_x: dict[str, float] = {}
    nodes: dict[str, _Node] = {}
    y = TOP
    for _layer, groups in layers:
        def barycentre(group: Group) -> tuple[float, int]:
            edges = [e for e in parents_of.get(group.group_id, []) if e.parent in centre_x]
            total = sum(abs(e.weight) for e in edges)
            if not edges or total == 0:
                return (float("inf"), group.group_index)
            return (sum(abs(e.weight) * centre_x[e.parent] for e in edges) / total, group.group_index)

        ordered = sorted(groups, key=barycentre)
        for start_at in range(0, len(ordered), wrap):
            row = ordered[start_at:start_at + wrap]
            row_width = len(row) * (node_w + NODE_GAP) - NODE_GAP
            start = LEFT + (canvas - LEFT - PAD * 2 - row_width) / 2
            for i, group in enumerate(row):
                x = start + i * (node_w + NODE_GAP)
                nodes[group.group_id] = _Node(group, x, y, node_w, node_h)
            y += node_h + (SUB_ROW_GAP if start_at + wrap < len(ordered) else ROW_GAP)
        for group in ordered:
            centre_x[group.group_id] = nodes[group.group_id].cx
    height = y - ROW_GAP + TOP
    return nodes, canvas, height


def _attachments(edges: list[Edge], nodes: dict[str, _Node]) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each edge leaves its child (top) and enters its parent (bottom): spread over the middle of the box."""
    out_x: dict[tuple[str, str], float] = {}
    in_x: dict[tuple[str, str], float] = {}
    by_child: dict[str, list[Edge]] = {}
    by_parent: dict[str, list[Edge]] = {}
    for e in edges:
        by_child.setdefault(e.child, []).append(e)
        by_parent.setdefault(e.parent, []).append(e)
    for child, es in by_child.items():
        es.sort(key=lambda e: nodes[e.parent].cx)
        for k, e in enumerate(es):
            out_x[(e.child, e.parent)] = _spread(nodes[child], k, len(es))
    for parent, es in by_parent.items():
        es.sort(key=lambda e: nodes[e.child].cx)
        for k, e in enumerate(es):
            in_x[(e.child, e.parent)] = _spread(nodes[parent], k, len(es))
    return {key: (out_x[key], in_x[key]) for key in out_x}


def _spread(node: _Node, k: int, n: int) -> float:
    span = node.width * 0.6
    return node.cx if n == 1 else node.cx - span / 2 + span * k / (n - 1)


def _svg(circuit: ClassCircuit, nodes: dict[str, _Node], width: float, height: float, exemplars: int,
         thumbnail: Callable[[Group, Exemplar], str | None], link: Callable[[Group], str] | None,
         marked: frozenset[str] = frozenset()) -> str:
    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="circuit" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="circuit of {esc(circuit.class_id)}">']
    for layer, groups in circuit.layers():
        shown = [nodes[g.group_id] for g in groups if g.group_id in nodes]
        if not shown:
            continue
        node = min(shown, key=lambda n: n.y)
        parts.append(f'<text class="layer" x="12" y="{node.y + node.height / 2 + 5:.1f}">{esc(layer)}</text>')
    edges = [e for e in circuit.edges if e.child in nodes and e.parent in nodes]
    strongest: dict[int, float] = {}
    for e in edges:
        strongest[e.parent_layer_index] = max(strongest.get(e.parent_layer_index, 0.0), abs(e.weight))
    ends = _attachments(edges, nodes)
    labels: list[str] = []
    for e in sorted(edges, key=lambda e: abs(e.weight)):  # strong edges drawn last, on top
        child, parent = nodes[e.child], nodes[e.parent]
        x0, x1 = ends[(e.child, e.parent)]
        y0, y1 = child.y, parent.y + parent.height
        mid = (y0 + y1) / 2
        top = strongest.get(e.parent_layer_index) or 1.0
        stroke = 1.2 + (MAX_EDGE_WIDTH - 1.2) * abs(e.weight) / top
        colour = POSITIVE if e.weight >= 0 else NEGATIVE
        tip = f"{e.child} → {e.parent}: weight {e.weight:+.4g} ({e.n_edges} hyper-edges, input rank {e.rank})"
        if e.relation:
            tip += "\n" + e.relation
        parts.append(f'<path class="edge" d="M{x0:.1f},{y0:.1f} C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} '
                     f'{x1:.1f},{y1:.1f}" stroke="{colour}" stroke-width="{stroke:.2f}" '
                     f'data-child="{esc(e.child)}" data-parent="{esc(e.parent)}"><title>{esc(tip)}</title></path>')
        if len(edges) <= EDGE_LABEL_LIMIT or e.rank == 0:
            labels.append(f'<text class="weight" x="{(x0 + x1) / 2:.1f}" y="{mid + 4:.1f}" fill="{colour}">'
                          f'{e.weight:+.2f}</text>')
    parts.extend(labels)
    for node in nodes.values():
        parts.append(_node_svg(node, exemplars, thumbnail, link, node.group.id in marked))
    parts.append("</svg>")
    return "\n".join(parts)


def _node_svg(node: _Node, exemplars: int, thumbnail: Callable[[Group, Exemplar], str | None],
              link: Callable[[Group], str] | None, marked: bool = False) -> str:
    esc = html.escape
    g = node.group
    full = g.label or ("class logit" if g.is_root else g.group_id)
    chars = int((node.width - 2 * PAD) / 7.8)
    caption = full if len(full) <= chars else full[: chars - 1] + "…"
    count = f"{len(g.neurons)} neuron{'s' if len(g.neurons) != 1 else ''}"
    sub = count if full == g.group_id else f"{g.group_id} · {count}"
    tip = g.description or g.label or g.group_id
    tip += "\nneurons: " + ", ".join(str(channel_of(n)) for n in g.neurons[:24])
    tip += " …" if len(g.neurons) > 24 else ""
    cls = ("node root" if g.is_root else "node") + (" shared" if marked else "")
    out = [f'<a href="{esc(link(g))}">' if link is not None else "",
           f'<g class="{cls}" data-group="{esc(g.group_id)}" data-id="{esc(g.id)}"><title>{esc(tip)}</title>',
           f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" height="{node.height:.1f}" rx="7"/>',
           f'<text class="caption" x="{node.x + PAD:.1f}" y="{node.y + 16:.1f}">{esc(caption)}</text>',
           f'<text class="sub" x="{node.x + PAD:.1f}" y="{node.y + 30:.1f}">{esc(sub)}</text>']
    for k in range(exemplars):
        x = node.x + PAD + k * (THUMB + THUMB_GAP)
        y = node.y + CAPTION
        exemplar = g.exemplars[k] if k < len(g.exemplars) else None
        uri = thumbnail(g, exemplar) if exemplar is not None else None
        if uri:
            out.append(f'<image x="{x:.1f}" y="{y:.1f}" width="{THUMB}" height="{THUMB}" href="{uri}" '
                       'preserveAspectRatio="none"/>')
        elif exemplar is not None:  # the thumbnail is recorded but its file is gone: a grey box
            out.append(f'<rect class="missing" x="{x:.1f}" y="{y:.1f}" width="{THUMB}" height="{THUMB}">'
                       f'<title>patch {exemplar.patch_id}: thumbnail not found</title></rect>')
    out.append("</g></a>" if link is not None else "</g>")
    return "".join(out)


_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c; margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } .meta { color: #4a5568; margin: 0 0 12px; }
.legend span { display: inline-block; margin-right: 18px; } .swatch { display: inline-block; width: 28px;
  height: 4px; vertical-align: middle; margin-right: 6px; }
.canvas { overflow-x: auto; border: 1px solid #e2e8f0; border-radius: 8px; background: #fafbfc; }
svg text { font-family: system-ui, sans-serif; }
.layer { font-size: 13px; font-weight: 600; fill: #4a5568; }
.edge { fill: none; stroke-opacity: .55; } .edge:hover { stroke-opacity: 1; }
.weight { font-size: 10px; text-anchor: middle; paint-order: stroke; stroke: #fafbfc; stroke-width: 3px; }
.node rect { fill: #fff; stroke: #a0aec0; stroke-width: 1.2; } .node:hover rect { stroke: #2d3748; }
.node.root rect { stroke: #d69e2e; stroke-width: 2.4; fill: #fffbeb; }
.node rect.missing { fill: #ccc; stroke: none; }
.caption { font-size: 13px; font-weight: 600; fill: #1a202c; } .sub { font-size: 11px; fill: #718096; }
table { border-collapse: collapse; margin-top: 18px; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f7fafc; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #975a16; }
"""


def _page(circuit: ClassCircuit, run: Run | None, drawing: Drawing, exemplars: int) -> str:
    esc = html.escape
    title = f"Circuit of class {circuit.class_name} ({circuit.class_id})"
    meta = [f"run <code>{esc(circuit.run_id)}</code>"]
    if run is not None:
        if run.meta is not None:
            p = run.meta.params
            meta.append(f"k={p.k}, tau={p.tau}, IG steps={p.n_steps}")
        if run.created_at:
            meta.append(f"computed {esc(run.created_at)}")
    meta.append(f"{len(circuit.groups)} groups, {len(circuit.edges)} edges"
                + (f" (top {circuit.top_n} inputs per group)" if circuit.top_n else ""))
    if drawing.n_hidden:
        left = ", ".join(f"{n} in {esc(layer)}" for layer, n in drawing.hidden.items())
        why = f"not on a top-{circuit.top_n} path to the logit" if circuit.top_n else "weakest"
        meta.append(f"{len(drawing.groups)} groups drawn ({drawing.n_hidden} {why} left out: {left})")
    missing, svg = drawing.missing, drawing.svg
    note = ""
    if missing:
        where = esc(circuit.bundle_path or "(no bundle path recorded)")
        note = (f'<p class="note">{missing} exemplar thumbnail(s) were not found under {where} '
                "(the bundle moved?): grey boxes stand in for them.</p>")
    printed = "" if len(circuit.edges) <= EDGE_LABEL_LIMIT else "; weights printed on each group's strongest input"
    legend = (f'<p class="legend"><span><i class="swatch" style="background:{POSITIVE}"></i>excites the parent '
              f'(weight &gt; 0)</span><span><i class="swatch" style="background:{NEGATIVE}"></i>inhibits it '
              "(weight &lt; 0)</span><span>edge width ∝ |weight| within each layer; hover a node or an edge for "
              f"details{printed}</span></p><p class=\"legend\">{esc(BACKGROUND_NOTE)}</p>")
    rows = []
    for layer, groups in circuit.layers():
        for g in groups:
            neurons = ", ".join(str(channel_of(n)) for n in g.neurons)
            rows.append(f"<tr><td>{esc(layer)}</td><td>{esc(g.group_id)}</td><td>{esc(g.label or '')}</td>"
                        f"<td>{esc(g.description or '')}</td><td>{esc(neurons)}</td></tr>")
    edge_rows = []
    for e in circuit.edges:
        edge_rows.append(f"<tr><td>{esc(e.child)}</td><td>{esc(e.parent)}</td><td class='num'>{e.weight:+.4g}</td>"
                         f"<td class='num'>{e.n_edges}</td><td>{esc(e.relation or '')}</td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="meta">{" · ".join(meta)}</p>
{legend}{note}
{faithfulness_html(run)}
<div class="canvas">
{svg}
</div>
<h2 style="font-size:16px;margin-top:22px">Groups</h2>
<table><tr><th>layer</th><th>group</th><th>label</th><th>description</th><th>neurons (channels)</th></tr>
{"".join(rows)}</table>
<h2 style="font-size:16px;margin-top:22px">Edges</h2>
<table><tr><th>child</th><th>parent</th><th>weight</th><th>hyper-edges</th><th>relation</th></tr>
{"".join(edge_rows)}</table>
<p class="meta" style="margin-top:18px">Rendered by neurflow-graph from the graph store; {exemplars} exemplar
patches per group (nearest the cluster centre first).</p>
</body></html>
"""
