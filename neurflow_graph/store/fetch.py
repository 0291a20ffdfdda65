"""Thin typed readers over the query files: what the CLI and notebooks ask the store most often."""

from __future__ import annotations

from dataclasses import dataclass

import neo4j
import pyarrow as pa

from neurflow_graph.store.queries import run, run_table


@dataclass(frozen=True)
class RunSummary:
    """One stored run; `complete` is False while (or after an interrupted) ingest."""

    run_id: str
    complete: bool
    model: str
    class_id: str
    class_index: int
    class_name: str
    created_at: str | None


def fetch_runs(driver: neo4j.Driver, database: str) -> list[RunSummary]:
    """Every stored run, newest first (`cypher/list_runs.cypher`)."""
    return [
        RunSummary(
            run_id=r["run_id"],
            complete=r["complete"] is True,
            model=r["model"],
            class_id=r["class_id"],
            class_index=int(r["class_index"]),
            class_name=str(r["class_name"]),
            created_at=r["created_at"],
        )
        for r in run(driver, database, "list_runs")
    ]


def fetch_run_status(driver: neo4j.Driver, database: str, run_id: str) -> dict[str, object] | None:
    """Completeness and recorded counts of one run, or None when it is not stored (`run_status.cypher`)."""
    rows = run(driver, database, "run_status", run_id=run_id)
    return rows[0] if rows else None


def fetch_circuit(driver: neo4j.Driver, database: str, class_id: str) -> pa.Table:
    """The FEEDS edges of a class's complete runs, one row per edge (`circuit_of_class.cypher`)."""
    return run_table(driver, database, "circuit_of_class", class_id=class_id)
