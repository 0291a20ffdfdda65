"""The graph store: an embedded ArcadeDB server (or Neo4j), its schema, and the run-bundle writer."""

from neurflow_graph.bundle.tables import BundleTables, read_bundle_tables
from neurflow_graph.store.connection import Connection, connect
from neurflow_graph.store.paths import resolve_data_dir
from neurflow_graph.store.queries import run, run_table
from neurflow_graph.store.schema import SCHEMA_VERSION, check_schema_version, ensure_schema
from neurflow_graph.store.server import ServerInfo, ServerStatus, start, status, stop
from neurflow_graph.store.writer import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS, WriteReport, load_bundle, write_run_graph

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_WRITERS",
    "SCHEMA_VERSION",
    "BundleTables",
    "Connection",
    "ServerInfo",
    "ServerStatus",
    "WriteReport",
    "check_schema_version",
    "connect",
    "ensure_schema",
    "load_bundle",
    "read_bundle_tables",
    "resolve_data_dir",
    "run",
    "run_table",
    "start",
    "status",
    "stop",
    "write_run_graph",
]
