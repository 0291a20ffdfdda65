"""The circuit page: self-contained HTML (inline SVG, base64 thumbnails), labels, signs, grey boxes, a PNG."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from neurflow_graph.query.results import ClassCircuit
from neurflow_graph.records import Edge, Exemplar, Group
from neurflow_graph.render import find_chromium, render_circuit_html, screenshot, write_circuit_html
from neurflow_graph.render.images import data_uri, pil_png


def _thumb(path: Path, shade: int) -> Path:
    Image.new("RGB", (96, 96), (shade, shade, shade)).save(path)
    return path


def _circuit(tmp_path: Path) -> ClassCircuit:
    ok = _thumb(tmp_path / "a.png", 200)
    ex = (Exemplar(0, 1, "thumbnails/p1.png", ok), Exemplar(1, 2, "thumbnails/p2.png", None))

    def group(gid: str, layer: str, li: int, gi: int, **kw) -> Group:
        return Group(f"run/{gid}", gid, layer, li, gi, li == 0, (f"m/{layer}/{gi}", f"m/{layer}/{gi + 5}"),
                            ex, **kw)

    groups = (group("fc/g0", "fc", 0, 0), group("l2/g0", "l2", 1, 0, label="stripes & <dots>",
                                                 description="Thin \"parallel\" stripes."),
              group("l2/g1", "l2", 1, 1), group("l1/g0", "l1", 2, 0), group("l1/g1", "l1", 2, 1))
    edges = (Edge("l2/g0", "fc/g0", "l2", "fc", 1, 0, 0.8, 3, 0, relation="Stripes make the class."),
             Edge("l2/g1", "fc/g0", "l2", "fc", 1, 0, -0.3, 2, 1),
             Edge("l1/g1", "l2/g0", "l1", "l2", 2, 1, 2.5, 7, 0),
             Edge("l1/g0", "l2/g1", "l1", "l2", 2, 1, 0.4, 1, 0))
    return ClassCircuit("m/7", "seven", "run", str(tmp_path), groups, edges)


def test_page_is_self_contained_and_shows_labels_signs_and_grey_boxes(tmp_path: Path) -> None:
    circuit = _circuit(tmp_path)
    page = render_circuit_html(circuit, exemplars=2)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert page.count("data:image/png;base64,") == len(circuit.groups)  # one thumbnail found per group
    assert page.count('class="missing"') == len(circuit.groups)  # the other is a grey box
    assert "2 exemplar thumbnail" not in page and "were not found under" in page
    assert "stripes &amp; &lt;dots&gt;" in page and "<title>Thin &quot;parallel&quot; stripes." in page
    assert "Stripes make the class." in page  # the FEEDS relation, in the edge tooltip and the table
    assert page.count('class="edge"') == len(circuit.edges)
    assert '#c53030' in page and '#2b6cb0' in page  # the negative edge is red, the others blue
    widths = [float(w) for w in re.findall(r'class="edge" d="[^"]+" stroke="#[0-9a-f]+" stroke-width="([0-9.]+)"',
                                          page)]
    assert max(widths) == pytest.approx(9.0)  # the strongest edge of a layer gets the widest stroke


def test_rows_follow_layers_and_children_sit_under_their_parents(tmp_path: Path) -> None:
    page = render_circuit_html(_circuit(tmp_path), exemplars=2)
    y = {m[1]: float(m[0]) for m in re.findall(r'<text class="layer" x="12" y="([0-9.]+)">([^<]+)</text>', page)}
    assert y["fc"] < y["l2"] < y["l1"]
    x = {m[1]: float(m[0]) for m in re.findall(r'<text class="caption" x="([0-9.]+)" y="[0-9.]+">([^<]+)</text>',
                                              page)}
    # l1/g1 feeds l2/g0 (left) and l1/g0 feeds l2/g1 (right): the barycentre pass puts l1/g1 first
    assert x["l1/g1"] < x["l1/g0"]


def test_data_uri_round_trips() -> None:
    png = pil_png(Image.new("RGB", (4, 4), "red"))
    assert data_uri(png).startswith("data:image/png;base64,iVBOR")


# .ci/run installs Debian's chromium; where it could not, it says why in NEURFLOW_GRAPH_NO_CHROMIUM.
@pytest.mark.skipif(find_chromium() is None, reason=os.environ.get(
    "NEURFLOW_GRAPH_NO_CHROMIUM", "no headless Chromium installed (apt-get install chromium)"))
def test_page_renders_to_png(tmp_path: Path) -> None:
    page = write_circuit_html(_circuit(tmp_path), tmp_path / "c.html", exemplars=2)
    png = screenshot(page, tmp_path / "c.png", width=900, height=700)
    with Image.open(png) as shot:
        assert shot.size == (900, 700)
        colours = shot.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # drawn, not a blank page
