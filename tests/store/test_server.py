"""The embedded ArcadeDB server process: start/find/stop, its files, and the one-line failures."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from neurflow_graph.errors import ConfigError, StoreError
from neurflow_graph.store import paths, server


def test_start_finds_the_running_server(data_dir: Path) -> None:
    first = server.start(data_dir)
    again = server.start(data_dir)
    assert again == first
    found = server.status(data_dir)
    assert found.state == "running"
    assert found.info == first
    assert server.server_ready(first)


def test_state_file_records_pid_and_ports(data_dir: Path) -> None:
    info = server.start(data_dir)
    state = json.loads((data_dir / "server.json").read_text())
    assert (state["pid"], state["bolt_port"], state["http_port"]) == (info.pid, info.bolt_port, info.http_port)
    assert info.host == "127.0.0.1"
    assert info.bolt_uri == f"bolt://127.0.0.1:{info.bolt_port}"


def test_password_file_is_private_and_never_in_argv(data_dir: Path) -> None:
    info = server.start(data_dir)
    mode = stat.S_IMODE(os.stat(info.password_file).st_mode)
    assert mode == 0o600
    password = server.read_password(data_dir)
    assert len(password) >= 24
    cmdline = Path(f"/proc/{info.pid}/cmdline")
    if cmdline.exists():
        argv = cmdline.read_bytes().decode()
        assert password not in argv
        assert "com.arcadedb.server.ArcadeDBServer" in argv
        assert "BoltProtocolPlugin" in argv
    assert password not in info.log_file.read_text(errors="replace")


def test_server_runs_the_throughput_collector_unless_told_otherwise(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _jvm_argv(server.start(data_dir))
    assert "-XX:+UseParallelGC" in default and "-Xmx2g" in default
    monkeypatch.setenv(server.GC_ENV, "serial")
    monkeypatch.setenv(server.HEAP_ENV, "1g")
    other = server.start(tmp_path)  # the JVM must accept the flags, or the start fails
    try:
        argv = _jvm_argv(other)
        assert "-XX:+UseSerialGC" in argv and "-Xmx1g" in argv
        assert "-XX:+UseParallelGC" not in argv and "-XX:+UseG1GC" not in argv
    finally:
        server.stop(tmp_path)


@pytest.mark.parametrize(("env", "value"), [(server.GC_ENV, "zgc"), (server.HEAP_ENV, "2 GB")])
def test_bad_collector_or_heap_is_a_one_line_error_before_any_start(
    env: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=rf"^{env}=.*set one or unset it$") as caught:
        server.start(tmp_path)
    assert "\n" not in str(caught.value)
    assert server.status(tmp_path).state == "stopped"


def _jvm_argv(info: server.ServerInfo) -> list[str]:
    cmdline = Path(f"/proc/{info.pid}/cmdline")
    if not cmdline.exists():
        pytest.skip("reading a process's argv needs /proc (Linux)")
    return cmdline.read_bytes().decode().split("\0")


def _listening_on(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses of the sockets listening on TCP `port` (read from /proc/net/tcp and tcp6)."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # 32-bit words, each in host (little-endian) order
                found.append(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
    return found


def _loopback_only(port: int) -> bool:
    addresses = _listening_on(port)
    mapped = [getattr(a, "ipv4_mapped", None) or a for a in addresses]
    return bool(addresses) and all(a.is_loopback for a in mapped)


def _other_local_addresses() -> list[str]:
    """This machine's IPv4 addresses that are not loopback (a server on 0.0.0.0 answers on them): its host name's,
    and the one a packet to a private address would leave from (a UDP connect sends nothing)."""
    found = set()
    with contextlib.suppress(OSError):
        found |= {n[4][0] for n in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 9))
        found.add(probe.getsockname()[0])
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback and a != "0.0.0.0")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc/net (Linux)")
def test_listens_on_loopback_only(data_dir: Path) -> None:
    with socket.socket() as everywhere:  # the check itself tells a server on every interface apart
        everywhere.bind(("0.0.0.0", 0))
        everywhere.listen()
        assert not _loopback_only(everywhere.getsockname()[1])
    info = server.start(data_dir)
    for port in (info.bolt_port, info.http_port):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert _loopback_only(port), f"port {port} listens on {_listening_on(port)}"
        for address in _other_local_addresses():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=2).close()


def test_stale_state_file_is_reported_and_cleared(tmp_path: Path) -> None:
    lay = paths.layout(tmp_path)
    dead = _dead_pid()
    lay.state_file.write_text(
        json.dumps({"pid": dead, "bolt_port": 1, "http_port": 2, "started_at": "2026-01-01T00:00:00+00:00"})
    )
    found = server.status(tmp_path)
    assert found.state == "stale"
    assert "stale" in found.message and str(dead) in found.message and "\n" not in found.message
    assert server.stop(tmp_path) is False
    assert not lay.state_file.exists()
    assert server.status(tmp_path).state == "stopped"


def test_taken_port_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        monkeypatch.setenv(server.BOLT_PORT_ENV, str(port))
        with pytest.raises(StoreError, match=f"port {port} .* is taken") as err:
            server.start(tmp_path)
    assert "\n" not in str(err.value)
    assert server.status(tmp_path).state == "stopped"


def test_stop_without_server_is_a_no_op(tmp_path: Path) -> None:
    assert server.stop(tmp_path) is False
    assert server.stop(tmp_path / "never-created") is False


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.resolve_data_dir() == (tmp_path / "xdg" / "neurflow-graph").resolve()
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "env"))
    assert paths.resolve_data_dir() == (tmp_path / "env").resolve()
    assert paths.resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()


def _dead_pid() -> int:
    """A pid that no process has (a child that has exited and been reaped)."""
    pid = os.fork()
    if pid == 0:  # child
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
