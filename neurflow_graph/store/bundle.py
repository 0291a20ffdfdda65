"""Read a run bundle (run.json + Parquet tables, see docs/artifacts.md) into Arrow tables for the writer."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from neurflow_graph.errors import ArtifactError

BUNDLE_FORMAT = 1
# The columns the store reads from each table (a table may carry more).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patches": (
        "patch_id",
        "image_index",
        "image_sha256",
        "granularity",
        "x0",
        "y0",
        "x1",
        "y1",
        "thumbnail",
    ),
    "neurons": (
        "neuron_id",
        "layer",
        "layer_index",
        "channel",
        "is_root",
        "is_leaf",
        "top_patch_ids",
        "activation_max",
    ),
    "semantic_groups": (
        "sg_id",
        "neuron_id",
        "layer",
        "layer_index",
        "group_index",
        "patch_ids",
        "mean_activation",
        "neuron_group_id",
    ),
    "hyperedges": ("child_id", "parent_sg_id", "score", "weight", "core_score", "core_rank"),
    "neuron_groups": (
        "group_id",
        "layer",
        "layer_index",
        "group_index",
        "is_root",
        "neuron_ids",
        "sg_ids",
        "patch_ids",
        "exemplar_patch_ids",
    ),
    "group_edges": ("child_group_id", "parent_group_id", "weight", "n_edges"),
}


@dataclass(frozen=True)
class BundleTables:
    """A run's `run.json` (as a dict) and its six tables; `path` is the bundle directory when read from disk."""

    run: dict[str, Any]
    patches: pa.Table
    neurons: pa.Table
    semantic_groups: pa.Table
    hyperedges: pa.Table
    neuron_groups: pa.Table
    group_edges: pa.Table
    path: Path | None = None

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def model_name(self) -> str:
        return str(self.run["model"]["name"])

    def table(self, name: str) -> pa.Table:
        """One of the six tables by its file stem (`hyperedges`, …)."""
        return getattr(self, name)


def read_bundle_tables(path: str | os.PathLike[str]) -> BundleTables:
    """Read `run.json` and the Parquet tables of a bundle directory; anything missing is an ArtifactError."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"run bundle {root} is not a directory")
    run = read_run_json(root / "run.json")
    tables = {name: _read_table(root / f"{name}.parquet", columns) for name, columns in TABLE_COLUMNS.items()}
    return BundleTables(run=run, path=root.resolve(), **tables)


def read_run_json(path: Path) -> dict[str, Any]:
    """Parse and check `run.json`: format version, run id, model name and class index present."""
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; {path.parent} is not a run bundle") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not readable JSON: {exc}") from None
    check_run(run, str(path))
    return run


def check_run(run: Any, where: str) -> None:
    """Fail with an ArtifactError naming `where` unless `run` has the fields the store needs."""
    if not isinstance(run, dict):
        raise ArtifactError(f"{where}: expected a JSON object")
    if run.get("bundle_format") != BUNDLE_FORMAT:
        raise ArtifactError(
            f"{where}: bundle_format {run.get('bundle_format')!r} is not supported (this release reads {BUNDLE_FORMAT})"
        )
    if run.get("complete") is not True:
        raise ArtifactError(f"{where}: the run did not complete (complete is not true); re-run it")
    try:
        str(run["run_id"]), str(run["model"]["name"]), int(run["class"]["index"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"{where}: needs run_id, model.name and class.index") from None


def check_tables(tables: BundleTables) -> None:
    """Fail with an ArtifactError naming the table when a column the store reads is absent."""
    check_run(tables.run, "run.json")
    for name, columns in TABLE_COLUMNS.items():
        missing = [c for c in columns if c not in tables.table(name).column_names]
        if missing:
            raise ArtifactError(f"{name}.parquet lacks column(s) {', '.join(missing)}")


def _read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    if not path.is_file():
        raise ArtifactError(f"run bundle {path.parent} lacks {path.name}")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(f"{path} is not a readable Parquet file: {exc}") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing)}")
    return pq.read_table(path, columns=list(columns))
