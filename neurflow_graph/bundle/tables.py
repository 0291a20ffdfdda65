"""A run bundle as Arrow tables for the writer (reading and checking is ``artifacts.read_tables``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from neurflow_graph import ids
from neurflow_graph.bundle.files import SCHEMAS, read_tables
from neurflow_graph.errors import ArtifactError


@dataclass(frozen=True)
class BundleTables:
    """A run's `run.json` (as a dict) and its six tables; `path` is the bundle directory when read from disk."""

    run_json: dict[str, Any]
    patches: pa.Table
    neurons: pa.Table
    semantic_groups: pa.Table
    hyperedges: pa.Table
    neuron_groups: pa.Table
    group_edges: pa.Table
    path: Path | None = None

    @property
    def run_id(self) -> str:
        return str(self.run_json["run_id"])

    @property
    def model_name(self) -> str:
        return str(self.run_json["model"]["name"])

    def table(self, name: str) -> pa.Table:
        """One of the six tables by its file stem (`hyperedges`, …)."""
        return getattr(self, name)


def read_bundle_tables(path: str | os.PathLike[str]) -> BundleTables:
    """Read and check `run.json` and the Parquet tables of a bundle; anything missing is an ArtifactError."""
    run, tables = read_tables(path)
    return BundleTables(run_json=run, path=Path(path).resolve(), **tables)


def check_tables(tables: BundleTables) -> None:
    """Fail with an ArtifactError naming the table when a column the store reads is absent."""
    for name, schema in SCHEMAS.items():
        missing = [c for c in schema.names if c not in tables.table(name).column_names]
        if missing:
            raise ArtifactError(f"{name}.parquet lacks column(s) {', '.join(missing)}")
    neurons = tables.neurons.select(["neuron_id", "layer", "channel"]).to_pydict()
    for nid, layer, channel in zip(*neurons.values(), strict=True):
        if nid != ids.neuron_id(tables.model_name, layer, channel):
            raise ArtifactError(
                f"neurons.parquet: neuron {nid!r} is in layer {layer!r} at channel {channel}, so its id must be "
                f"{ids.neuron_id(tables.model_name, layer, channel)!r}; a run never renames a shared Neuron: re-run it"
            )
