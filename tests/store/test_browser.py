"""Neo4j Browser's view of the embedded store, in a real browser: Neo4j's browser driver in headless Chromium.

A page served on 127.0.0.1 loads the `neo4j-driver` browser build (what Neo4j Browser speaks: Bolt over
WebSocket), connects to a fresh embedded store holding real digits circuits, runs the calls Browser makes on
connect and every read query in `cypher/` with its header's example parameters; each answer must equal the
Python driver's. The server is then restarted and the page's connection used again; last, a circuit query is
drawn in the page and screenshot (copied to docs/figures/browser-circuit.png, shown by docs/browser.md, when
NEURFLOW_GRAPH_UPDATE_FIGURES=1).
Node packages: tests/browser/package.json (`npm ci --prefix tests/browser`, as .ci/run does).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import neo4j.graph
import pytest

from neurflow_graph.query import read_queries
from neurflow_graph.render.screenshot import find_chromium
from neurflow_graph.store import connect, queries, server, write_run_graph

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "tests" / "browser"
FIGURE = ROOT / "docs" / "figures" / "browser-circuit.png"
# The docs figure is retaken only when asked, so a test run leaves the work tree as it was.
UPDATE_FIGURES_ENV = "NEURFLOW_GRAPH_UPDATE_FIGURES"
DATABASE = "neurflow"
DRIVER_BUILD = BROWSER_DIR / "node_modules" / "neo4j-driver" / "lib" / "browser" / "neo4j-web.min.js"
CYTOSCAPE = BROWSER_DIR / "node_modules" / "cytoscape" / "dist" / "cytoscape.min.js"

# What Neo4j Browser runs when it connects (its connect and metadata polls), and on which database.
CONNECT_CALLS: tuple[tuple[str | None, str], ...] = (
    (None, "CALL dbms.components() YIELD name, versions, edition"),
    ("system", "SHOW DATABASES"),
    (DATABASE, "CALL db.labels() YIELD label RETURN label ORDER BY label"),
    (DATABASE, "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType ORDER BY relationshipType"),
    (DATABASE, "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey ORDER BY propertyKey"),
    (None, "CALL dbms.clientConfig()"),
    ("system", "CALL dbms.showCurrentUser()"),
    ("system", "SHOW PROCEDURES"),
    ("system", "SHOW FUNCTIONS"),
)
_EXAMPLE_RUN_ID = re.compile(r"digits-c3-[0-9a-f]+")
_EXAMPLE_NEURON = re.compile(r"^digits/conv2/[0-9]+$")


def _skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (apt-get install nodejs npm), so no browser can be driven"
    if not DRIVER_BUILD.is_file() or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "the browser test's Node packages are not installed; run `npm ci --prefix tests/browser`"
    if find_chromium() is None:
        return "no Chromium is installed (apt-get install chromium)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


# -- values as both drivers give them, in one comparable form ---------------------------------------------------


def tagged(value: Any) -> Any:
    """A Python-driver value in the tagged JSON form page.html gives the browser driver's values."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"$int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": {"nan": "NaN", "inf": "Infinity"}.get(
            str(value), "-Infinity")}
    if isinstance(value, (list, tuple)):
        return [tagged(v) for v in value]
    if isinstance(value, neo4j.graph.Node):
        return {"$node": {"elementId": value.element_id, "labels": sorted(value.labels),
                          "properties": tagged(dict(value))}}
    if isinstance(value, neo4j.graph.Relationship):
        return {"$relationship": {"elementId": value.element_id, "type": value.type,
                                  "start": value.start_node.element_id, "end": value.end_node.element_id,
                                  "properties": tagged(dict(value))}}
    if isinstance(value, neo4j.graph.Path):
        return {"$path": {"nodes": tagged(list(value.nodes)), "relationships": tagged(list(value.relationships))}}
    if isinstance(value, dict):
        return {k: tagged(v) for k, v in value.items()}
    return {"$other": str(value)}


def python_answer(driver: neo4j.Driver, database: str | None, cypher: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Python driver's answer in the page's form: keys and rows, or the server's error."""
    try:
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            result = session.run(cypher, params)
            records = list(result)
    except neo4j.exceptions.Neo4jError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    return {"keys": list(records[0].keys()) if records else [], "rows": [tagged(list(r.values())) for r in records]}


def example_params(name: str, run_id: str, neuron: str) -> dict[str, Any]:
    """The keyword arguments of the `// Example: run_cypher(driver, db, "name", …)` line of a query file's header, the
    example's run id and conv2 neuron replaced by the stored run's (so the example names things that exist: which
    neurons a circuit holds depends on the model this machine trained)."""
    header = queries.load(name).header
    start = header.index("Example:") + len("Example:")
    text = " ".join(line.strip() for line in header[start:].split("->")[0].splitlines())
    call = ast.parse(text.strip(), mode="eval").body
    assert isinstance(call, ast.Call), f"{name}: the Example line is not a run_cypher(...) call"
    params = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    return {k: _EXAMPLE_NEURON.sub(neuron, _EXAMPLE_RUN_ID.sub(run_id, v)) if isinstance(v, str) else v
            for k, v in params.items()}


def browser_uri(info: server.ServerInfo) -> str:
    """The address as Neo4j Browser's connect form takes it by default: the routing scheme neo4j://."""
    return f"neo4j://{info.host}:{info.bolt_port}"


def as_browser_params(value: Any) -> Any:
    """Parameters for the page: ints tagged, since a bare JS number is sent as a Cypher Float."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return {"$int": str(value)}
    if isinstance(value, dict):
        return {k: as_browser_params(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_browser_params(v) for v in value]
    return value


# -- the store, the page, the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, digits_bundle_dir: Path, digits_bundle_dirs) -> Iterator[Path]:
    """A fresh embedded store (its own data dir and server) holding the real runs of digits 3 and 5."""
    root = tmp_path_factory.mktemp("browser-store")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "NEURFLOW_GRAPH_DATABASE"):
            mp.delenv(name, raising=False)
        try:
            with connect(root, database=DATABASE) as conn:
                for path in (digits_bundle_dir, digits_bundle_dirs(5)):
                    write_run_graph(conn.driver, conn.database, path)
            yield root
        finally:
            server.stop(root)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """page.html and the two scripts it loads, served on 127.0.0.1 by Python's http.server in a thread."""
    site = tmp_path_factory.mktemp("site")
    for path in (BROWSER_DIR / "page.html", DRIVER_BUILD, CYTOSCAPE):
        shutil.copy(path, site / path.name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/page.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Drive:
    """drive.mjs as a child process: JSON lines out, one JSON line in after the restart prompt."""

    def __init__(self, spec_path: Path, timeout: float) -> None:
        self.proc = subprocess.Popen(["node", str(BROWSER_DIR / "drive.mjs"), str(spec_path)], cwd=BROWSER_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.watchdog = threading.Timer(timeout, self.kill)
        self.watchdog.start()

    def read(self, phase: str) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise AssertionError(f"drive.mjs ended before {phase!r} (exit {self.proc.returncode}):\n"
                                 f"{self.proc.stderr.read()[-3000:]}")
        message = json.loads(line)
        assert message["phase"] == phase, message
        return message

    def send(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """Node and the Chromium it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.kill()
        self.proc.wait()


def test_neo4j_browser_driver_in_chromium_answers_like_the_python_driver(
    store: Path, page_url: str, tmp_path: Path
) -> None:
    info = server.start(store)
    password = server.read_password(store)
    with connect(store, database=DATABASE) as conn:
        (run3,) = [r["run_id"] for r in conn.run("list_runs") if r["class_id"] == "digits/3"]
        neuron = next(g["neurons"][0] for g in conn.run("circuit_groups", class_id="digits/3", run_id=run3)
                      if g["layer"] == "conv2")
    reads = read_queries()
    assert "circuit_graph" in reads and "bias_paths" in reads
    calls = [{"name": cypher, "database": db, "cypher": cypher, "params": {}} for db, cypher in CONNECT_CALLS]
    for name in reads:
        (statement,) = queries.load(name).statements
        calls.append({"name": name, "database": DATABASE, "cypher": statement,
                      "params": example_params(name, run3, neuron)})
    after = [c for c in calls if c["name"] in ("circuit_of_class", "bias_paths", CONNECT_CALLS[2][1])]
    draw_params = {"class_id": "digits/3", "run_id": None}
    shot_path = tmp_path / FIGURE.name
    spec = {
        "page": page_url, "chromium": find_chromium(), "bolt": browser_uri(info), "user": server.ROOT_USER,
        "password": password,
        "calls": [{**c, "params": as_browser_params(c["params"])} for c in calls],
        "after_restart": [{**c, "params": as_browser_params(c["params"])} for c in after],
        "draw": {"database": DATABASE, "cypher": queries.load("circuit_graph").statements[0], "params": draw_params,
                 "caption": "<code>neurflow-graph query circuit_graph -p class_id=digits/3</code> "
                            "(cypher/circuit_graph.cypher), drawn from the browser driver's nodes and relationships: "
                            "blue FEEDS edges excite the parent, red ones inhibit it, width by |weight|",
                 "screenshot": str(shot_path)},
    }
    spec_path = tmp_path / "spec.json"
    spec_path.touch(mode=0o600)
    spec_path.write_text(json.dumps(spec))

    with neo4j.GraphDatabase.driver(info.bolt_uri, auth=(server.ROOT_USER, password)) as driver:
        expected = [python_answer(driver, c["database"], c["cypher"], c["params"]) for c in calls]
    drive = Drive(spec_path, timeout=300)
    try:
        before = drive.read("before")
        assert before["server"]["address"].endswith(f":{info.bolt_port}")
        for call, want, got in zip(calls, expected, before["answers"], strict=True):
            assert "error" not in got, f"{call['name']}: Neo4j Browser needs this call: {got['error']}"
            assert got == want, f"{call['name']}: the browser driver's answer differs from the Python driver's"
        answered = {c["name"]: a for c, a in zip(calls, before["answers"], strict=True)}
        for name in ("circuit_of_class", "circuit_graph", "circuit_groups", "bias_paths", "list_classes",
                     "node_counts", "group_exemplars", "shared_groups"):
            assert answered[name]["rows"], f"{name}: the example found nothing in a store holding digits 3 and 5"
        # What Browser reads from the connect calls: a Neo4j 5 kernel, the databases (ours the default), the user.
        (kernel,) = answered[CONNECT_CALLS[0][1]]["rows"]
        assert kernel[0] == "Neo4j Kernel" and kernel[1][0].startswith("5."), kernel
        shown = answered["SHOW DATABASES"]
        databases = {row[shown["keys"].index("name")]: dict(zip(shown["keys"], row, strict=True))
                     for row in shown["rows"]}
        assert {DATABASE, "system"} <= set(databases) and databases[DATABASE]["default"] is True
        labels = {row[0] for row in answered[CONNECT_CALLS[2][1]]["rows"]}
        types = {row[0] for row in answered[CONNECT_CALLS[3][1]]["rows"]}
        assert {"Class", "NeuronGroup", "Run"} <= labels and {"FEEDS", "LOGIT_OF"} <= types, (labels, types)
        (user,) = answered["CALL dbms.showCurrentUser()"]["rows"]
        assert user[0] == server.ROOT_USER

        # `db stop`, `db start`: the page's connection (same address) is used again after the restart.
        drive.read("restart")
        server.stop(store)
        restarted = server.start(store)
        assert restarted.pid != info.pid
        assert restarted.bolt_port == info.bolt_port
        drive.send({"bolt": browser_uri(restarted)})
        again = drive.read("after")
        assert again["reused"] is True
        with neo4j.GraphDatabase.driver(restarted.bolt_uri, auth=(server.ROOT_USER, password)) as driver:
            for call, got in zip(after, again["answers"], strict=True):
                assert got == python_answer(driver, call["database"], call["cypher"], call["params"]), call["name"]

        drawn = drive.read("drawn")
        edges = answered["circuit_graph"]["rows"]
        ids = {v["$node"]["elementId"] for row in edges for v in row if isinstance(v, dict) and "$node" in v}
        assert drawn["rows"] == len(edges) and drawn["nodes"] == len(ids)
        assert drawn["relationships"] == len(edges) + 1  # every FEEDS edge and the root's LOGIT_OF
        assert drive.proc.wait(timeout=60) == 0, drive.proc.stderr.read()[-3000:]
    finally:
        drive.close()
    from PIL import Image

    with Image.open(shot_path) as shot:
        assert shot.size == (1280, 860)
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert any(rgb == (0xF7, 0x97, 0x67) for _, rgb in colours), "no neuron group was drawn"
    assert os.path.getsize(shot_path) > 10_000
    if os.environ.get(UPDATE_FIGURES_ENV) == "1":
        shutil.copyfile(shot_path, FIGURE)
