"""The embedded ArcadeDB server's HTTP admin API: which databases exist, creating and dropping one (Bolt cannot)."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from typing import Any

from neurflow_graph.errors import ConfigError, StoreError, StoreUnavailable
from neurflow_graph.store.server import ROOT_USER, ServerInfo

_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def check_database_name(name: str) -> str:
    """Return `name` if it is a valid database name (letter first, then letters, digits, `_`, `-`)."""
    if not isinstance(name, str) or not _DB_NAME.match(name):
        raise ConfigError(
            f"database name must start with a letter and hold only letters, digits, '_' or '-' "
            f"(at most 64), got {name!r}"
        )
    return name


def list_databases(info: ServerInfo, password: str) -> list[str]:
    """Names of the databases the embedded server holds."""
    return [str(n) for n in _call(info, password, "GET", "/api/v1/databases").get("result", [])]


def ensure_database(info: ServerInfo, password: str, name: str) -> bool:
    """Create database `name` on the embedded server unless it exists; True when it was created."""
    check_database_name(name)
    if _call(info, password, "GET", f"/api/v1/exists/{name}").get("result"):
        return False
    try:
        _call(info, password, "POST", "/api/v1/server", {"command": f"create database {name}"})
    except _Conflict:  # created meanwhile by another process
        return False
    return True


def drop_database(info: ServerInfo, password: str, name: str) -> bool:
    """Delete database `name` and its files from the embedded server; False when it did not exist."""
    check_database_name(name)
    if not _call(info, password, "GET", f"/api/v1/exists/{name}").get("result"):
        return False
    _call(info, password, "POST", "/api/v1/server", {"command": f"drop database {name}"})
    return True


class _Conflict(StoreError):
    pass


def _call(info: ServerInfo, password: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = base64.b64encode(f"{ROOT_USER}:{password}".encode()).decode()
    request = urllib.request.Request(
        info.http_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30.0) as resp:  # noqa: S310 - loopback URL we built
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise StoreError(
                f"the embedded ArcadeDB server refused the root password in {info.password_file}; "
                f"restore that file or delete {info.data_dir}/arcadedb/config/server-users.jsonl and restart"
            ) from None
        if exc.code == 409:
            raise _Conflict(f"{method} {path}: conflict") from None
        detail = _error_detail(exc)
        raise StoreError(f"ArcadeDB HTTP API {method} {path} failed with {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnavailable(
            f"the embedded ArcadeDB server does not answer at {info.http_url} ({exc}); run `neurflow-graph db start`"
        ) from None
    return json.loads(raw) if raw else {}


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason or ""
    return str(payload.get("detail") or payload.get("error") or exc.reason)
