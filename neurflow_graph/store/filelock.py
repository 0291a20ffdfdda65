"""An exclusive lock on a file, held across processes (POSIX flock): one server start or one writer at a time."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from neurflow_graph.errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

_held = threading.local()  # paths this thread holds: taking one again nests instead of waiting on itself


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], *, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the duration of the block.

    The holder's pid is written into the file; when the lock is taken, `waiting` (e.g. "waiting for another
    writer") is printed once on stderr with that pid before blocking. A file that cannot be opened (a
    read-only data dir) is a one-line StoreError. A thread that holds the lock may take it again (nested).
    """
    key = os.path.abspath(path)
    held = _held.__dict__.setdefault("paths", set())
    if fcntl is None or key in held:
        yield
        return
    try:
        fh = open(path, "a+b")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise StoreError(
            f"cannot open the lock file {path} ({exc.strerror}); the store's data dir must be writable: fix its "
            f"permissions, or set NEURFLOW_GRAPH_DATA_DIR (or --data-dir) to a writable directory"
        ) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                print(f"{waiting} (pid {_holder(fh)})", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(OSError):
                fh.truncate(0)
                fh.write(f"{os.getpid()}\n".encode())
                fh.flush()
            held.add(key)
            yield
        finally:
            held.discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(fh: object) -> str:
    """The pid written into a lock file by its holder, or "unknown" (it has not written it yet)."""
    try:
        text = os.pread(fh.fileno(), 64, 0).decode("ascii", "replace").strip()  # type: ignore[attr-defined]
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
