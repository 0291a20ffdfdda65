"""`neurflow-graph serve` as a user runs it: a process that prints its URL, answers, and on Ctrl-C stops, leaving
no process and no listening port behind (20 times over); the embedded store it started is stopped with it. The
explorer's own modules import no torch."""

from __future__ import annotations

import ast
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.errors import MissingDependency
from neurflow_graph.serve import require_extra
from neurflow_graph.store import server

from .conftest import DATABASE

PACKAGE = Path(__file__).resolve().parents[2] / "neurflow_graph"
HEAVY = ("torch", "torchvision", "sklearn", "neurflow_graph.engine", "neurflow_graph.bundle",
         "neurflow_graph.evaluation", "neurflow_graph.debugging")
"""Modules that load torch or scikit-learn (render.images names torch for type checkers only)."""


def _all_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def _module_level_imports(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_the_explorer_modules_import_no_torch() -> None:
    """serve/ imports nothing heavy at any depth; render/circuit.py (which it draws with) not at module level."""
    found = {str(p.relative_to(PACKAGE)): [n for n in _all_imports(p) if n.startswith(HEAVY)]
             for p in sorted((PACKAGE / "serve").glob("*.py"))}
    found["cli/serve.py"] = [n for n in _module_level_imports(PACKAGE / "cli" / "serve.py") if n.startswith(HEAVY)]
    found["render/circuit.py"] = [n for n in _module_level_imports(PACKAGE / "render" / "circuit.py")
                                  if n.startswith(HEAVY)]
    assert {k: v for k, v in found.items() if v} == {}


_LOADED = "import importlib, sys; importlib.import_module(sys.argv[1]); " \
          "print(','.join(m for m in ('torch', 'sklearn') if m in sys.modules))"


def _loads(module: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _LOADED, module], capture_output=True, text=True, timeout=120,
                          check=True)
    return set(filter(None, done.stdout.strip().split(",")))


def test_importing_the_explorer_loads_no_torch() -> None:
    """At run time: neither the query layer nor the app on top of it loads torch or scikit-learn."""
    assert _loads("neurflow_graph.query") == set()
    assert _loads("neurflow_graph.serve.app") == set()


def test_a_missing_extra_is_one_line_naming_it() -> None:
    require_extra()  # installed here
    with pytest.raises(MissingDependency, match=r"^neurflow-graph serve needs no_such_package_xyz, which is not "
                                                r"installed; pip install 'neurflow-graph\[serve\]'$"):
        require_extra(("starlette", "no_such_package_xyz"))


def test_a_port_in_use_is_one_line(stored: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--data-dir", str(stored)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output and "--port" in result.output


class Served:
    """`neurflow-graph serve` in a child process, its stdout read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "neurflow_graph.cli", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def url(self, timeout: float = 120.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"serve printed no URL; stderr: {self.proc.stderr.read()[-500:]}") from None
            if "explorer: http://" in line:
                return line.split("explorer: ", 1)[1].split()[0]

    def interrupt(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(signum)  # SIGINT: what Ctrl-C sends
        code = self.proc.wait(timeout=60)
        return code, self.proc.stderr.read() if self.proc.stderr else ""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_started_and_stopped_20_times_leaves_nothing_behind(stored: Path) -> None:
    for attempt in range(20):
        host = ["--host", "0.0.0.0"] if attempt == 0 else []
        served = Served("--data-dir", str(stored), "--database", DATABASE, *host)
        url = served.url()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with urllib.request.urlopen(url.replace("0.0.0.0", "127.0.0.1") + "index.json", timeout=60) as answer:
            assert answer.status == 200 and b'"classes"' in answer.read()
        code, stderr = served.interrupt()
        assert code == 0, stderr[-500:]
        assert "Traceback" not in stderr
        if attempt == 0:
            assert "warning: serving on 0.0.0.0" in stderr and "can read every class" in stderr
        assert _gone(served.proc.pid) and not _listening(port), f"attempt {attempt}"
    assert server.status(stored).state == "running"  # a store that was running before is left running


@pytest.mark.slow
def test_serve_stops_the_embedded_store_it_started(tmp_path: Path) -> None:
    """Here stopped with SIGTERM (what a service manager sends): the same clean exit as Ctrl-C."""
    data_dir = tmp_path / "fresh"
    served = Served("--data-dir", str(data_dir))
    url = served.url(timeout=240)
    found = server.status(data_dir)
    assert found.state == "running" and found.info is not None
    with urllib.request.urlopen(url + "index.json", timeout=60) as answer:
        assert answer.status == 200
    code, stderr = served.interrupt(signal.SIGTERM)
    assert code == 0, stderr[-500:]
    assert server.status(data_dir).state == "stopped" and _gone(found.info.pid)


def test_ingest_ends_by_naming_show_and_serve(vit_ingest_output: str, serve_data_dir: Path) -> None:
    last = vit_ingest_output.strip().splitlines()[-1]
    where = f"--data-dir {serve_data_dir} --database {DATABASE}"
    assert last == (f"next, with no other software: `neurflow-graph show digits-vit/3 {where}` writes its circuit as "
                    f"one page; `neurflow-graph serve {where}` explores every stored class in your browser")


def test_query_list_names_the_user_queries_first_with_whole_descriptions() -> None:
    from neurflow_graph.query import read_queries

    result = CliRunner().invoke(main, ["query", "--list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    split = next(i for i, line in enumerate(lines) if line.startswith("Internal"))
    listed = [line.split()[0] for line in lines if line and not line.startswith((" ", "Queries", "Internal"))]
    assert sorted(listed) == sorted(read_queries())  # every read query once, no write query
    user = {line.split()[0] for line in lines[:split] if line and not line.startswith((" ", "Queries"))}
    assert {"circuit_edges", "bias_paths", "shared_groups", "class_index", "group_shares"} <= user
    assert {"schema_indexes", "shares_top", "class_info"}.isdisjoint(user)
    described = [line for line in lines if line and not line.startswith((" ", "Queries", "Internal"))]
    # the first sentence whole: it ends the line with its full stop, and nothing of "Parameters:" follows
    assert all(line.rstrip().endswith((".", ")")) and "Parameters:" not in line for line in described), \
        [line for line in described if not line.rstrip().endswith((".", ")"))]


def test_an_empty_shared_groups_answer_says_why(stored: Path, digits_bundle_dirs) -> None:
    from neurflow_graph.query import fetch_shared_groups
    from neurflow_graph.store import connect, write_run_graph

    with connect(stored, database="serve_one_class") as conn:
        write_run_graph(conn.driver, conn.database, digits_bundle_dirs(3))
    one = CliRunner().invoke(main, ["query", "shared_groups", "--data-dir", str(stored), "--database",
                                    "serve_one_class"])
    assert one.exit_code == 0 and one.stdout.strip() == "(no rows)"
    assert one.stderr.strip() == ("no shared groups: they pair groups of two different classes, and the store holds "
                                  "complete runs of only digits/3; ingest another class (e.g. --classes 3,5,8)")
    with connect(stored, database=DATABASE) as conn:
        best = fetch_shared_groups(conn, min_jaccard=0.0, limit=1)[0].jaccard
    if best < 1.0:  # above the best pair of the store: nothing, and it says so
        many = CliRunner().invoke(main, ["query", "shared_groups", "-p", "min_jaccard=1.0", "--data-dir",
                                         str(stored), "--database", DATABASE])
        assert many.exit_code == 0 and many.stdout.strip() == "(no rows)"
        assert "no group of one of the 4 stored classes shares neurons with a group of another at Jaccard >= 1" \
            in many.stderr
