"""The graph store: an embedded ArcadeDB server (or Neo4j), its schema, and the run-bundle writer.

Names are imported on first use (PEP 562): `db` commands and queries reach the server and the connection
without loading the bundle writer (and with it torch).
"""

from __future__ import annotations

from neurflow_graph._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "neurflow_graph.bundle.tables": ("BundleTables", "read_bundle_tables"),
    "neurflow_graph.store.connection": ("Connection", "connect"),
    "neurflow_graph.store.paths": ("resolve_data_dir",),
    "neurflow_graph.store.queries": ("run_cypher", "run_table"),
    "neurflow_graph.store.schema": ("SCHEMA_VERSION", "check_schema_version", "ensure_schema"),
    "neurflow_graph.store.server": ("ServerInfo", "ServerStatus", "start", "status", "stop"),
    "neurflow_graph.store.writer": ("DEFAULT_BATCH_SIZE", "DEFAULT_WRITERS", "WriteReport", "load_bundle",
                                    "write_run", "write_run_graph"),
}
__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_WRITERS", "SCHEMA_VERSION", "BundleTables", "Connection", "ServerInfo",
    "ServerStatus", "WriteReport", "check_schema_version", "connect", "ensure_schema", "load_bundle",
    "read_bundle_tables", "resolve_data_dir", "run_cypher", "run_table", "start", "status", "stop", "write_run",
    "write_run_graph",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
