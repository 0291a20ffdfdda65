"""The store's schema: constraints and indexes from `cypher/schema.cypher`, guarded by a SchemaVersion node."""

from __future__ import annotations

import neo4j

from neurflow_graph._version import __version__
from neurflow_graph.errors import SchemaVersionError
from neurflow_graph.store.queries import run_cypher

SCHEMA_VERSION = 3
"""Bump when a change to the node/relationship layout makes older stores unreadable by this code."""
SCHEMA_KEY = "neurflow-graph"


def read_schema_version(driver: neo4j.Driver, database: str) -> int | None:
    """The schema version recorded in the store, or None for a store never written by neurflow-graph.

    Anything but an integer (a string, a float, a bool, null on an existing node) is a SchemaVersionError:
    it is never coerced, so "1" or 1.5 are not read as 1.
    """
    rows = run_cypher(driver, database, "schema_version_read", key=SCHEMA_KEY)
    if not rows or not rows[0].get("present"):
        return None
    version = rows[0]["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise SchemaVersionError(
            f"graph store {database!r} records schema version {version!r} ({type(version).__name__}), not an "
            f"integer; neurflow-graph {__version__} reads schema version {SCHEMA_VERSION}: load your run "
            f"bundles into a new database (neurflow-graph load BUNDLE --database NEW)"
        )
    return version


def check_schema_version(driver: neo4j.Driver, database: str) -> int | None:
    """Refuse (SchemaVersionError) a store written with another schema version; returns the version found."""
    found = read_schema_version(driver, database)
    if found is not None and found != SCHEMA_VERSION:
        advice = (
            "upgrade neurflow-graph to read it"
            if found > SCHEMA_VERSION
            else "load your run bundles into a new database (neurflow-graph load BUNDLE)"
        )
        raise SchemaVersionError(
            f"graph store {database!r} has schema version {found}, but neurflow-graph {__version__} "
            f"reads schema version {SCHEMA_VERSION}; {advice}"
        )
    return found


def ensure_schema(driver: neo4j.Driver, database: str) -> None:
    """Create the constraints and indexes (idempotent) and record the schema version; run before any write."""
    check_schema_version(driver, database)
    run_cypher(driver, database, "schema")
    run_cypher(driver, database, "schema_version_write", key=SCHEMA_KEY, version=SCHEMA_VERSION, written_by=__version__)
