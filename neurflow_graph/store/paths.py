"""Where the embedded graph store keeps its files: one data directory, resolved in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "NEURFLOW_GRAPH_DATA_DIR"
APP_NAME = "neurflow-graph"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else `$NEURFLOW_GRAPH_DATA_DIR`, else the XDG user data dir."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / APP_NAME).resolve()


@dataclass(frozen=True)
class StoreLayout:
    """The files of one data directory (all absolute)."""

    root: Path

    @property
    def server_root(self) -> Path:
        """ArcadeDB's `server.rootPath`: its config/, databases/ and backups/."""
        return self.root / "arcadedb"

    @property
    def databases(self) -> Path:
        return self.server_root / "databases"

    @property
    def users_file(self) -> Path:
        """Written by ArcadeDB at first start; holds the hashed root password."""
        return self.server_root / "config" / "server-users.jsonl"

    @property
    def password_file(self) -> Path:
        """The generated root password, mode 0600; read by the server and by clients."""
        return self.root / "root-password"

    @property
    def state_file(self) -> Path:
        """pid and ports of the running server (JSON)."""
        return self.root / "server.json"

    @property
    def ports_file(self) -> Path:
        """The Bolt and HTTP ports of the first start (JSON), reused at every restart."""
        return self.root / "ports.json"

    @property
    def lock_file(self) -> Path:
        """Serialises start/stop between processes."""
        return self.root / "server.lock"

    @property
    def writer_lock_file(self) -> Path:
        """Held by the one process writing to the store at a time."""
        return self.root / "writer.lock"

    @property
    def log_file(self) -> Path:
        """The server process's stdout and stderr."""
        return self.root / "server.log"

    @property
    def log_dir(self) -> Path:
        """ArcadeDB's own rotating logs and JVM crash files."""
        return self.root / "log"


def layout(data_dir: str | os.PathLike[str] | None = None) -> StoreLayout:
    """The file layout of the resolved data directory."""
    return StoreLayout(resolve_data_dir(data_dir))
