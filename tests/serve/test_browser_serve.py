"""The explorer in a real browser: Debian's Chromium driven through `playwright-core` (tests/browser/serve.mjs)
over the app served by uvicorn on 127.0.0.1 from the real store: index, search, a class's circuit, hovering a
group lights exactly its paths to the logit, then a group, a class sharing its neurons, and the comparison.

Screenshots of each step go to the test's folder; the class page's is copied to docs/figures/serve-class.png
(shown by the README) when NEURFLOW_GRAPH_UPDATE_FIGURES=1.
Node packages: tests/browser/package.json (`npm ci --prefix tests/browser`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow_graph.query import (
    fetch_bias_paths,
    fetch_class_circuit,
    fetch_faithfulness,
    fetch_group_shares,
    fetch_shared_groups,
)
from neurflow_graph.render.screenshot import find_chromium
from neurflow_graph.serve import pages

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "tests" / "browser"
FIGURE = ROOT / "docs" / "figures" / "serve-class.png"
UPDATE_FIGURES_ENV = "NEURFLOW_GRAPH_UPDATE_FIGURES"


def _skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (apt-get install nodejs npm), so no browser can be driven"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "the browser test's Node packages are not installed; run `npm ci --prefix tests/browser`"
    if find_chromium() is None:
        return "no Chromium is installed (apt-get install chromium)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


@pytest.fixture
def served(conn) -> Iterator[str]:
    """The explorer under uvicorn on a free port of 127.0.0.1, in a thread of this process."""
    from neurflow_graph.serve.server import serving_in_thread

    with serving_in_thread(conn) as url:
        yield url + "/"


def _ancestors(circuit, group: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The groups and edges on `group`'s paths up to the logit."""
    reached, todo = {group}, [group]
    while todo:
        child = todo.pop()
        for e in circuit.edges:
            if e.child == child and e.parent not in reached:
                reached.add(e.parent)
                todo.append(e.parent)
    return reached, {(e.child, e.parent) for e in circuit.edges if e.child in reached}


def test_explore_in_a_real_browser(served: str, conn, tmp_path: Path) -> None:
    circuit = fetch_class_circuit(conn, "digits/5")
    lowest = max(g.layer_index for g in circuit.groups)
    hover = next(g for g in sorted(circuit.groups, key=lambda g: g.group_index)
                 if g.layer_index == lowest and any(e.child == g.group_id for e in circuit.edges)
                 and any(s.class_id != "digits/5" for s in fetch_group_shares(conn, g.id)))
    first_share = fetch_group_shares(conn, hover.id)[0]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"url": served, "chromium": find_chromium(), "search": "5", "hover": hover.group_id,
                                "shots": str(tmp_path)}))
    done = subprocess.run(["node", str(BROWSER_DIR / "serve.mjs"), str(spec)], cwd=BROWSER_DIR, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["errors"] == []
    assert all(url.startswith(served) for url in seen["requests"])  # nothing from a CDN or the network
    assert seen["index"]["rows"] == 4 and seen["search"] == ["digits/5"]
    assert seen["cls"]["url"].endswith("/class/digits/5") and seen["cls"]["nodes"] == len(circuit.groups)
    assert len(seen["cls"]["images"]) > 0 and seen["cls"]["loaded"] == len(seen["cls"]["images"])
    later = seen["cls"]["sections"]  # fetched by the page's script after the circuit
    bias = fetch_bias_paths(conn, "digits/5", limit=10)
    assert later["bias"] == max(len(bias), 1)  # "no path" is one row
    faith = fetch_faithfulness(conn, "digits/5")
    assert later["faithfulness"] == (len(faith) + 1 if faith else 0)
    assert (faith[0].verdict in later["trust"]) if faith else ("not measured" in later["trust"])
    pairs = fetch_shared_groups(conn, min_jaccard=pages.SHARED_MIN_JACCARD, cls="digits/5", limit=1000)
    assert later["sharing"] == min(len({p.class_b if p.class_a == "digits/5" else p.class_a for p in pairs}), 10)
    assert {"cypher/circuit_groups.cypher", "cypher/bias_paths.cypher", "cypher/faithfulness.cypher"} <= \
        set(later["cypher"]) and int(later["count"]) == len(later["cypher"])
    nodes, edges = _ancestors(circuit, hover.group_id)
    assert seen["hover"]["focus"] is True
    assert set(seen["hover"]["nodes"]) == nodes and {tuple(e) for e in seen["hover"]["edges"]} == edges
    assert float(seen["hover"]["dimmed"]) < 0.2 and seen["unhover"] == 0
    assert seen["group"]["url"].endswith(f"/group/{hover.id}") and hover.group_id in seen["group"]["h1"]
    assert seen["sharing"]["url"].endswith(f"/class/{first_share.class_id}")
    assert "/compare?a=" in seen["compare"]["url"] and seen["compare"]["pairs"] > 0
    assert seen["compare"]["marked"] >= 2
    for name in ("1-index", "3-class", "4-hover", "5-group", "7-compare"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    if os.environ.get(UPDATE_FIGURES_ENV) == "1":
        shutil.copyfile(tmp_path / "3-class.png", FIGURE)
    print(f"screenshots in {tmp_path}")
