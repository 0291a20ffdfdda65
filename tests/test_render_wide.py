"""Wide circuits stay readable: a layer of many groups wraps onto rows of at most WRAP, `max_groups` keeps the
strongest and says how many it left out, `--top N` draws only the groups on kept paths to the logit, and the
drawing keeps its natural size (the page scrolls; it is never shrunk to the window)."""

from __future__ import annotations

import math
import re

import pytest

from neurflow_graph.query.results import ClassCircuit
from neurflow_graph.records import Edge, Group
from neurflow_graph.render.circuit import BACKGROUND_NOTE, WRAP, circuit_svg, drawn_groups, render_circuit_html

WIDE = 35  # the digits ViT's widest layer


def _wide(top_n: int | None = None) -> ClassCircuit:
    """A logit fed by WIDE groups of one layer, group i with weight (i + 1) / WIDE, alternating sign; with
    `top_n` only the logit's top_n inputs are kept, as the query layer answers with --top."""
    root = Group("run/fc/g0", "fc/g0", "fc", 0, 0, True, ("m/fc/0",))
    groups = [Group(f"run/b/g{i}", f"b/g{i}", "b", 1, i, False, (f"m/b/{i}",)) for i in range(WIDE)]
    edges = [Edge(g.group_id, "fc/g0", "b", "fc", 1, 0, (i + 1) / WIDE * (-1) ** i, 1) for i, g in enumerate(groups)]
    edges.sort(key=lambda e: -abs(e.weight))
    edges = [Edge(**{**e.__dict__, "rank": r}) for r, e in enumerate(edges)][:top_n]
    return ClassCircuit("m/1", "one", "run", None, (root, *groups), tuple(edges), top_n)


def test_a_wide_layer_wraps_onto_rows_and_keeps_its_natural_size() -> None:
    circuit = _wide()
    drawing = circuit_svg(circuit, exemplars=2)
    assert len(drawing.groups) == WIDE + 1 and drawing.hidden == {}
    tops = {}
    for group, y in re.findall(r'data-group="([^"]+)"[^>]*><title>.*?</title><rect x="[0-9.]+" y="([0-9.]+)"',
                               drawing.svg, re.S):
        tops.setdefault(float(y), []).append(group)
    rows = [groups for y, groups in sorted(tops.items()) if "fc/g0" not in groups]
    assert len(rows) == math.ceil(WIDE / WRAP) and max(len(r) for r in rows) == WRAP
    width = float(re.search(r'<svg [^>]*width="([0-9]+)"', drawing.svg).group(1))
    assert width < 1500  # a row of WRAP groups, not WIDE of them side by side
    assert "max-width" not in drawing.svg  # drawn at its size; the page's canvas scrolls


def test_max_groups_keeps_the_strongest_and_says_how_many_it_left_out() -> None:
    circuit = _wide()
    kept, hidden = drawn_groups(circuit, max_groups=12)
    strongest = sorted(circuit.edges, key=lambda e: -abs(e.weight))[:12]
    assert {g.group_id for g in kept} == {"fc/g0"} | {e.child for e in strongest}
    assert hidden == {"b": WIDE - 12}
    page = render_circuit_html(circuit, exemplars=0, max_groups=12)
    assert f"13 groups drawn ({WIDE - 12} weakest left out: {WIDE - 12} in b)" in page
    assert page.count('class="edge"') == 12  # edges of left-out groups are not drawn


@pytest.mark.parametrize("top", [1, 3])
def test_top_draws_only_the_groups_on_kept_paths(top: int) -> None:
    circuit = _wide(top_n=top)
    drawing = circuit_svg(circuit, exemplars=0)
    assert {g.group_id for g in drawing.groups} == {"fc/g0"} | {e.child for e in circuit.edges}
    assert len(drawing.groups) == top + 1 and drawing.hidden == {"b": WIDE - top}
    assert f"not on a top-{top} path to the logit" in render_circuit_html(circuit, exemplars=0)


def test_the_page_explains_black_thumbnails() -> None:
    assert "background patch" in BACKGROUND_NOTE
    assert "A solid-black thumbnail is a background patch" in render_circuit_html(_wide(), exemplars=0)
