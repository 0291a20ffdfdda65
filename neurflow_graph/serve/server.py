"""Run the explorer under uvicorn on a local port, over the store the other commands use.

The embedded store is started when it is not running, and then stopped again when the explorer stops (Ctrl-C),
so a `serve` leaves no process behind; a store that was already running (or Neo4j) is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator

from neurflow_graph.errors import ConfigError
from neurflow_graph.query.library import Runner

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def open_to_others_warning(host: str) -> str | None:
    """The warning `--host` prints when the explorer would be reachable from other machines, else None."""
    if host in LOCAL_HOSTS:
        return None
    return (f"warning: serving on {host}, not 127.0.0.1: anyone who can reach this machine on that address can read "
            "every class, circuit, label and bundle thumbnail in the store (the explorer has no login)")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a port in use is a one-line ConfigError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use; pass another with --port (0 picks a free one)") \
                from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def _server(conn: Runner):
    """A uvicorn server of the explorer over `conn` (quiet: warnings only, no access log)."""
    import uvicorn

    from neurflow_graph.serve.app import create_app

    return uvicorn.Server(uvicorn.Config(create_app(conn), log_level="warning", lifespan="off", access_log=False))


@contextlib.contextmanager
def serving_in_thread(conn: Runner) -> Iterator[str]:
    """The explorer on a free port of 127.0.0.1 in a thread of this process, for tests and benchmarks; its URL."""
    sock = bind("127.0.0.1", 0)
    server = _server(conn)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def run_app(conn: Runner, sock: socket.socket, echo: Callable[[str], None] = print) -> None:
    """Serve the explorer over `conn` on `sock` until Ctrl-C (SIGINT) or SIGTERM; prints its URL first."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = _server(conn)
    echo(f"neurflow-graph explorer: http://{shown}:{port}/ (Ctrl-C to stop)")
    # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again: Ctrl-C becomes KeyboardInterrupt, and
    # SIGTERM becomes SystemExit here (not the default kill), so the caller's clean-up runs either way.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit) if main_thread else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        sock.close()
    echo("explorer stopped")


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def store_for_serving(data_dir: str | None, database: str | None,
                      echo: Callable[[str], None] = print) -> Iterator[Runner]:
    """A connection to the store (`store.connect`); an embedded server started here is stopped on the way out."""
    from neurflow_graph.store import connect, server
    from neurflow_graph.store.connection import NEO4J_URI_ENV

    embedded = not os.environ.get(NEO4J_URI_ENV)
    was_running = embedded and server.status(data_dir).state == "running"
    try:
        with connect(data_dir, database=database) as conn:
            echo(f"store: {conn.uri} (database {conn.database})")
            yield conn
    finally:
        if embedded and not was_running:
            server.stop(data_dir)
            echo("stopped the embedded store started for serving")
