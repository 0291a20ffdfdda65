"""A run bundle as Arrow tables for the writer (reading and checking is ``files.read_tables``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from neurflow_graph import ids
from neurflow_graph.bundle.files import SCHEMAS, read_tables
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.errors import ArtifactError


@dataclass(frozen=True)
class BundleTables:
    """A run's typed record (`meta`, whose `record` is its run.json) and its six tables; `path` is the bundle
    directory when read from disk (its columns were checked as it was read)."""

    meta: RunMeta
    patches: pa.Table
    neurons: pa.Table
    semantic_groups: pa.Table
    hyperedges: pa.Table
    neuron_groups: pa.Table
    group_edges: pa.Table
    path: Path | None = None

    @property
    def run_id(self) -> str:
        return self.meta.run_id

    @property
    def model_name(self) -> str:
        return self.meta.model.name

    def table(self, name: str) -> pa.Table:
        """One of the six tables by its file stem (`hyperedges`, …)."""
        return getattr(self, name)


def read_bundle_tables(path: str | os.PathLike[str]) -> BundleTables:
    """Read and check `run.json` and the Parquet tables of a bundle; anything missing is an ArtifactError."""
    meta, tables = read_tables(path)
    return BundleTables(meta=meta, path=Path(path).resolve(), **tables)


def check_tables(tables: BundleTables) -> None:
    """Fail with an ArtifactError naming the table when a column the store reads is absent (tables built in
    memory: a bundle read from disk had its columns checked as it was read) or a neuron id is not its own."""
    for name, schema in SCHEMAS.items() if tables.path is None else ():
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
