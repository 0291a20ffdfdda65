"""Faults of the embedded server, made on purpose on the real ArcadeDB server: each ends in one line, none in an orphan.

Ports, server.json, read-only and world-readable data dirs, bad port variables; and the stable ports a saved
Neo4j Browser connection relies on. Every test checks that no JVM of its data dir is left running.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.errors import ConfigError, StoreError
from neurflow_graph.store import connect, paths, server


def _jvms(data_dir: Path) -> list[int]:
    """Pids of every process whose command line names this data dir's ArcadeDB root (pgrep -f)."""
    root = f"arcadedb.server.rootPath={paths.layout(data_dir).server_root}"
    found = subprocess.run(["pgrep", "-f", root], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A fresh data dir whose servers are stopped (and checked gone) after the test."""
    root = tmp_path / "store"
    yield root
    server.stop(root)
    for pid in _jvms(root):  # never leave a JVM behind, even when the test failed
        os.kill(pid, 9)
    assert not _jvms(root)


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _take_port_before_spawn(monkeypatch: pytest.MonkeyPatch, which: str, times: int = 1) -> list[socket.socket]:
    """Make another process's listener take the chosen Bolt or HTTP port after the check, before the JVM binds."""
    real, held = server._spawn, []

    def spawn(lay, bolt_port, http_port):
        if len(held) < times:
            sock = socket.socket()
            sock.bind((server.HOST, bolt_port if which == "bolt" else http_port))
            sock.listen()
            held.append(sock)
        return real(lay, bolt_port, http_port)

    monkeypatch.setattr(server, "_spawn", spawn)
    return held


@pytest.mark.parametrize("which", ["bolt", "http"])
def test_a_port_lost_before_the_bind_stops_the_server_and_names_the_port(
    which: str, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server.BOLT_PORT_ENV if which == "bolt" else server.HTTP_PORT_ENV
    port = server._free_port()
    monkeypatch.setenv(env, str(port))  # a port the user chose: no fallback to another one
    held = _take_port_before_spawn(monkeypatch, which)
    began = time.monotonic()
    try:
        with pytest.raises(StoreError) as err:
            server.start(store_dir)
    finally:
        for sock in held:
            sock.close()
    elapsed = time.monotonic() - began
    message = str(err.value)
    name = "Bolt" if which == "bolt" else "HTTP"
    assert f"could not listen on {name} port {port} " in message and "\n" not in message
    assert "server was stopped" in message and env in message
    other = "HTTP" if which == "bolt" else "Bolt"
    assert f"{other} port" not in message
    assert elapsed < 45, f"took {elapsed:.0f} s: the failure is in the log long before the 60 s timeout"
    assert not _jvms(store_dir)
    assert server.status(store_dir).state == "stopped"
    assert not (store_dir / "server.json").exists()


def test_a_preferred_port_lost_before_the_bind_falls_back_to_free_ports_that_stay_across_restarts(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in (server.BOLT_PORT_ENV, server.HTTP_PORT_ENV):
        monkeypatch.delenv(env, raising=False)
    chosen = server._choose_ports(paths.layout(store_dir))
    expected_first = {env: port.port for env, port in chosen.items()}  # what a first start wants right now
    for env, port in chosen.items():  # 7687/2480 when free, else free ports
        assert port.source == ("preferred" if port.port == server.PREFERRED_PORTS[env] else "free")
    held = _take_port_before_spawn(monkeypatch, "bolt")
    try:
        info = server.start(store_dir)
        lost_ports = [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()
    (lost,) = lost_ports
    assert info.bolt_port != lost
    if chosen[server.BOLT_PORT_ENV].source == "preferred":  # else each choice is a new free port
        assert lost == expected_first[server.BOLT_PORT_ENV] == server.PREFERRED_PORTS[server.BOLT_PORT_ENV]
    assert len(_jvms(store_dir)) == 1
    remembered = json.loads((store_dir / "ports.json").read_text())
    assert remembered == {"bolt_port": info.bolt_port, "http_port": info.http_port}

    with connect(store_dir) as conn:  # creates the database
        database = conn.database
    password = server.read_password(store_dir)
    driver = neo4j.GraphDatabase.driver(info.bolt_uri, auth=(server.ROOT_USER, password))  # a saved connection
    try:
        assert driver.execute_query("RETURN 1 AS one", database_=database).records[0]["one"] == 1
        assert invoke("db", "stop", "--data-dir", store_dir).output.strip() == "stopped"
        assert not _jvms(store_dir)
        restarted = server.start(store_dir)
        assert (restarted.bolt_port, restarted.http_port) == (info.bolt_port, info.http_port)
        assert restarted.pid != info.pid
        assert driver.execute_query("RETURN 2 AS two", database_=database).records[0]["two"] == 2  # reconnects
    finally:
        driver.close()


def test_a_remembered_port_taken_at_restart_is_a_one_line_error(store_dir: Path) -> None:
    lay = paths.layout(store_dir)
    store_dir.mkdir(mode=0o700)
    with socket.socket() as sock:
        sock.bind((server.HOST, 0))
        sock.listen()
        taken = sock.getsockname()[1]
        lay.ports_file.write_text(json.dumps({"bolt_port": taken, "http_port": server._free_port(avoid=taken)}))
        with pytest.raises(StoreError) as err:
            server.start(store_dir)
    message = str(err.value)
    assert f"Bolt port {taken}" in message and "remembered in" in message and "ports.json" in message
    assert server.BOLT_PORT_ENV in message and "\n" not in message
    assert not _jvms(store_dir)


def test_environment_ports_override_the_remembered_ones_for_one_start(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lay = paths.layout(store_dir)
    store_dir.mkdir(mode=0o700)
    remembered = {"bolt_port": server._free_port(), "http_port": server._free_port()}
    lay.ports_file.write_text(json.dumps(remembered))
    override = server._free_port(avoid=remembered["bolt_port"])
    monkeypatch.setenv(server.BOLT_PORT_ENV, str(override))
    ports = server._choose_ports(lay)
    assert ports[server.BOLT_PORT_ENV].port == override
    assert ports[server.HTTP_PORT_ENV].port == remembered["http_port"]
    server._remember_ports(lay, ports)
    assert json.loads(lay.ports_file.read_text()) == remembered  # an override is not remembered


@pytest.mark.parametrize("value", ["99999", "0", "abc", "-1", "7687.0"])
@pytest.mark.parametrize("env", [server.BOLT_PORT_ENV, server.HTTP_PORT_ENV])
def test_a_bad_port_variable_is_one_line_before_any_start(
    env: str, value: str, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=rf"^{env} must be a port number from 1 to 65535, got '{value}'"):
        server.start(store_dir)
    result = invoke("db", "start", "--data-dir", store_dir)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and env in result.output
    assert "Traceback" not in result.output
    assert not _jvms(store_dir)


def test_a_lost_or_garbled_server_json_finds_the_running_server(store_dir: Path) -> None:
    info = server.start(store_dir)
    state = store_dir / "server.json"
    for damage in ("delete", "garble", "other pid"):
        if damage == "delete":
            state.unlink()
        elif damage == "garble":
            state.write_text("{not json")
        else:
            state.write_text(json.dumps({"pid": os.getpid(), "bolt_port": 1, "http_port": 2, "started_at": "x"}))
        found = server.status(store_dir)
        assert found.state == "running" and found.recovered, damage
        assert (found.info.pid, found.info.bolt_port, found.info.http_port) == (info.pid, info.bolt_port,
                                                                                info.http_port)
        assert "found by its process" in found.message and "\n" not in found.message
        status = invoke("db", "status", "--data-dir", store_dir)
        assert status.exit_code == 0 and f"pid {info.pid}" in status.output
        again = invoke("db", "start", "--data-dir", store_dir)  # no second JVM, and server.json rewritten
        assert again.exit_code == 0 and f"pid {info.pid}" in again.output, again.output
        assert _jvms(store_dir) == [info.pid]
        assert json.loads(state.read_text())["pid"] == info.pid
    state.unlink()
    stopped = invoke("db", "stop", "--data-dir", store_dir)
    assert stopped.exit_code == 0 and stopped.output.strip() == "stopped"
    assert not _jvms(store_dir)


def test_start_tightens_a_world_readable_data_dir(data_dir: Path) -> None:
    os.chmod(data_dir, 0o755)
    server.start(data_dir)  # the running session server: nothing else changes
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700


def test_a_new_data_dir_is_private(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(server.BOLT_PORT_ENV, "99999")  # stops the start right after the data dir is made
    with pytest.raises(ConfigError):
        server.start(store_dir / "nested")
    assert stat.S_IMODE(os.stat(store_dir / "nested").st_mode) == 0o700


_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def _read_only(root: Path) -> list[str]:
    """A command prefix that runs its command with `root` read-only: a read-only bind mount in a private mount
    namespace for root (who writes anywhere), else the directory's own mode (0500)."""
    if os.geteuid() != 0:
        os.chmod(root, 0o500)
        return []
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _READ_ONLY, "sh", str(root)]
    probe = subprocess.run([*prefix, "touch", str(root / "probe")], capture_output=True, text=True, check=False)
    if probe.returncode == 0 or "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only bind mount here (unshare/mount: {probe.stderr.strip()[:120]})")
    return prefix


def test_a_read_only_data_dir_is_one_line_for_every_command(tmp_path: Path) -> None:
    """The data dir is read-only (as in the trial: EROFS on server.lock): one line each, no JVM, no traceback."""
    root = tmp_path / "data"
    root.mkdir(mode=0o700)
    prefix = _read_only(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    try:
        for command in (["db", "start"], ["query", "list_runs"], ["db", "stop"]):
            result = subprocess.run(
                [*prefix, sys.executable, "-m", "neurflow_graph.cli", *command, "--data-dir", str(root)],
                capture_output=True, text=True, env=env, timeout=120, check=False,
            )
            out = result.stdout + result.stderr
            if command == ["db", "stop"]:
                assert result.returncode == 0 and "not running" in out, out
                continue
            assert result.returncode == 1, out
            assert "Traceback" not in out and out.strip().count("\n") == 0, out
            assert str(root) in out and "writable" in out, out
        if prefix:  # a read-only mount of a world-readable dir: it cannot be made private, so the start refuses
            os.chmod(root, 0o755)
            result = subprocess.run([*prefix, sys.executable, "-m", "neurflow_graph.cli", "db", "start", "--data-dir",
                                     str(root)], capture_output=True, text=True, env=env, timeout=120, check=False)
            out = result.stdout + result.stderr
            assert result.returncode == 1 and out.strip().count("\n") == 0, out
            assert "mode 0755" in out and "cannot be made private" in out and f"chmod 700 {root}" in out, out
        assert not _jvms(root)
    finally:
        os.chmod(root, 0o700)


def test_db_stop_needs_no_write_to_a_data_dir_made_read_only_while_the_server_runs(store_dir: Path) -> None:
    """`db stop` signals the pid it knows; the lock and server.json it cannot touch stay, and no JVM is left."""
    info = server.start(store_dir)
    assert _jvms(store_dir) == [info.pid]
    prefix = _read_only(store_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    try:
        result = subprocess.run([*prefix, sys.executable, "-m", "neurflow_graph.cli", "db", "stop", "--data-dir",
                                 str(store_dir)], capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        os.chmod(store_dir, 0o700)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and result.stdout.strip() == "stopped" and "Traceback" not in out, out
    assert not _jvms(store_dir)
    again = invoke("db", "status", "--data-dir", store_dir)  # the server.json left behind names a dead process
    assert again.exit_code != 0 or "not" in again.output or "stale" in again.output, again.output
    assert server.start(store_dir).pid != info.pid  # and the next start replaces it


def test_a_garbled_server_json_is_reported_once_per_command(store_dir: Path) -> None:
    info = server.start(store_dir)
    (store_dir / "server.json").write_text("{not json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    for command in (["db", "status"], ["db", "start"]):
        result = subprocess.run([sys.executable, "-m", "neurflow_graph.cli", *command, "--data-dir", str(store_dir)],
                                capture_output=True, text=True, env=env, timeout=120, check=False)
        out = result.stdout + result.stderr
        assert result.returncode == 0 and f"pid {info.pid}" in out, out
        assert out.count("unreadable server state") == 1, out
    assert _jvms(store_dir) == [info.pid]
