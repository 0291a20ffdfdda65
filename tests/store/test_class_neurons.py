"""The per-neuron class lists the writer keeps for shared_neurons follow the latest complete run of each class.

Real embedded server, real digits runs; the expected lists come from the bundles' Parquet tables.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from neurflow_graph.query import fetch_shared_neurons
from neurflow_graph.store import read_bundle_tables, write_run_graph
from neurflow_graph.store.connection import Connection


class Interrupted(Exception):
    """Raised by the on_batch hook to stop an ingest part way, as a crash would."""


def _stop(query: str, index: int) -> None:
    if query == "write_members":
        raise Interrupted(query)


def expected(bundles: list[Path], layer: str) -> dict[str, tuple[list[str], int]]:
    """neuron id -> (sorted class ids whose bundle's circuit holds it, neuron groups holding it) in `layer`."""
    classes: dict[str, set[str]] = {}
    groups: dict[str, int] = {}
    for path in bundles:
        tables = read_bundle_tables(path)
        class_id = f"{tables.model_name}/{tables.meta.class_index}"
        for n in pq.read_table(path / "neurons.parquet").to_pylist():
            if n["layer"] == layer:
                classes.setdefault(n["neuron_id"], set()).add(class_id)
        for g in pq.read_table(path / "neuron_groups.parquet").to_pylist():
            for n in g["neuron_ids"]:
                groups[n] = groups.get(n, 0) + 1
    return {n: (sorted(c), groups.get(n, 0)) for n, c in classes.items()}


def stored(conn: Connection, layer: str) -> dict[str, tuple[list[str], int]]:
    return {s.neuron_id: (list(s.classes), s.n_groups)
            for s in fetch_shared_neurons(conn, layer, min_classes=1, limit=100_000)}


def test_class_lists_follow_ingests_interruptions_and_reingests(
    conn: Connection, digits_bundle_dir: Path, digits_bundle_dirs
) -> None:
    three, five = digits_bundle_dir, digits_bundle_dirs(5)
    layers = sorted(set(pq.read_table(three / "neurons.parquet").column("layer").to_pylist()))
    write_run_graph(conn.driver, conn.database, three)
    write_run_graph(conn.driver, conn.database, five)
    for layer in layers:
        assert stored(conn, layer) == expected([three, five], layer)
    assert any(len(c) == 2 for layer in layers for c, _ in stored(conn, layer).values())  # the test shares neurons

    with pytest.raises(Interrupted):  # an interrupted re-ingest takes digit 3 off the lists (no complete run)
        write_run_graph(conn.driver, conn.database, three, on_batch=_stop)
    for layer in layers:
        assert stored(conn, layer) == expected([five], layer)

    write_run_graph(conn.driver, conn.database, three)  # finished again: back, with no class listed twice
    write_run_graph(conn.driver, conn.database, five)
    for layer in layers:
        assert stored(conn, layer) == expected([three, five], layer)
    assert fetch_shared_neurons(conn, layers[0], min_classes=3) == []
