"""Typed rows of the query library: one frozen dataclass per answer, plus `to_table` for bulk use.

Every `fetch_*` answer converts for notebooks: `to_arrow()` (a pyarrow Table, one row per record) and
`to_pandas()` (pandas is optional: without it the call is a MissingDependency error naming it). A list of
rows is a `Records` (a list); a class circuit also displays itself in Jupyter (`_repr_html_`, the `show` page).
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pyarrow as pa

from neurflow_graph.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


class Tabular:
    """`to_arrow()` and `to_pandas()` for a typed answer: one table row per record (`_rows`)."""

    _parts: tuple[str, ...] = ()
    """Answers with several kinds of rows (a circuit's groups and edges) name them; the first is the default."""

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return type(self), [self]

    def to_arrow(self, part: str | None = None) -> pa.Table:
        """The answer as a pyarrow Table (nested tuples become lists, paths strings); `part` picks the rows."""
        if part is not None and part not in self._parts:
            accepted = ", ".join(repr(p) for p in self._parts) or "none (this answer has one kind of row)"
            raise ConfigError(f"{type(self).__name__} has no part {part!r}; parts: {accepted}")
        row_type, rows = self._rows(part or (self._parts[0] if self._parts else None))
        return to_table(rows, row_type)

    def to_pandas(self, part: str | None = None) -> pd.DataFrame:
        """The answer as a pandas DataFrame (via `to_arrow`); pandas is an optional dependency."""
        try:
            import pandas  # noqa: F401 - only to name it when missing
        except ImportError:
            raise MissingDependency("to_pandas() needs pandas, which is not installed; pip install pandas "
                                    "(or use to_arrow())") from None
        return self.to_arrow(part).to_pandas()


class Records(list[T], Generic[T], Tabular):
    """The rows of a `fetch_*` answer: a plain list of records of one type that also converts to tables."""

    def __init__(self, row_type: type[T], rows: Iterable[T] = ()) -> None:
        super().__init__(rows)
        self.row_type = row_type

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return self.row_type, self


@dataclass(frozen=True)
class ClassInfo:
    """A class in the store and its runs; `latest_run` is the run class-level queries pick by default."""

    class_id: str
    model: str
    index: int
    name: str
    n_runs: int
    n_complete: int
    latest_run: str | None


@dataclass(frozen=True)
class Exemplar:
    """One exemplar patch of a group; `path` is its thumbnail file when the bundle is still where it was."""

    rank: int
    patch_id: int
    thumbnail: str | None
    path: Path | None = None
    image_index: int | None = None
    granularity: float | None = None
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class CircuitGroup:
    """A neuron group of a circuit, with its members, exemplars and (if labelled) its concept label."""

    id: str
    group_id: str
    layer: str
    layer_index: int
    group_index: int
    is_root: bool
    neurons: tuple[str, ...]
    exemplars: tuple[Exemplar, ...]
    label: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class CircuitEdge:
    """A FEEDS edge child -> parent (group ids within the run); `rank` 0 is the parent's strongest input."""

    child: str
    parent: str
    child_layer: str
    parent_layer: str
    child_layer_index: int
    parent_layer_index: int
    weight: float
    n_edges: int
    rank: int
    relation: str | None = None


@dataclass(frozen=True)
class ClassCircuit(Tabular):
    """The circuit of a class in one run: its groups (layer by layer) and weighted edges.

    `to_arrow("groups")` / `to_arrow("edges")` (the default) give one row per group or edge; in Jupyter the
    circuit draws itself with the `show` page.
    """

    class_id: str
    class_name: str
    run_id: str
    bundle_path: str | None
    groups: tuple[CircuitGroup, ...]
    edges: tuple[CircuitEdge, ...]
    top_n: int | None = None

    def layers(self) -> list[tuple[str, list[CircuitGroup]]]:
        """(layer, its groups by group index), from the logit layer down."""
        out: dict[int, tuple[str, list[CircuitGroup]]] = {}
        for g in sorted(self.groups, key=lambda g: (g.layer_index, g.group_index)):
            out.setdefault(g.layer_index, (g.layer, []))[1].append(g)
        return [out[i] for i in sorted(out)]

    def group(self, group_id: str) -> CircuitGroup:
        """The group with this id within the run (KeyError if absent)."""
        for g in self.groups:
            if g.group_id == group_id:
                return g
        raise KeyError(group_id)

    _parts = ("edges", "groups")

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return (CircuitEdge, self.edges) if part == "edges" else (CircuitGroup, self.groups)

    def _repr_html_(self) -> str:
        """The page of `neurflow-graph show`, in an iframe so its styles stay inside it (Jupyter's inline view)."""
        from neurflow_graph.render.circuit import render_circuit_html

        page = html.escape(render_circuit_html(self), quote=True)
        return (f'<iframe srcdoc="{page}" style="width:100%;height:640px;border:1px solid #e2e8f0" '
                'onload="this.style.height=(this.contentDocument.body.scrollHeight+24)+\'px\'"></iframe>')


@dataclass(frozen=True)
class BiasPath:
    """A chain of groups from `source` up to the root; strength = Π|w|, `product` keeps the sign."""

    run_id: str
    source: str
    groups: tuple[str, ...]
    weights: tuple[float, ...]
    product: float
    strength: float
    log_strength: float
    hops: int


@dataclass(frozen=True)
class SharedGroup:
    """Two groups of different classes in one layer whose neuron sets overlap (Jaccard of member neurons)."""

    layer: str
    class_a: str
    group_a: str
    class_b: str
    group_b: str
    jaccard: float
    shared: int
    n_a: int
    n_b: int
    shared_neurons: tuple[str, ...]


@dataclass(frozen=True)
class SharedNeuron:
    """A neuron of a layer and the classes whose circuits hold it (latest complete run of each class)."""

    neuron_id: str
    layer: str
    channel: int
    n_classes: int
    classes: tuple[str, ...]
    n_groups: int


@dataclass(frozen=True)
class NeuronRole:
    """One semantic group of a neuron in one class's circuit and the neuron group it fell into."""

    class_id: str
    class_name: str
    run_id: str
    layer: str
    layer_index: int
    is_root: bool
    is_leaf: bool
    activation_max: float
    semantic_group: str | None
    semantic_group_index: int | None
    n_patches: int | None
    mean_activation: float | None
    neuron_group: str | None
    group_node: str | None
    group_size: int | None
    group_label: str | None


@dataclass(frozen=True)
class RunInfo(Tabular):
    """A stored run's parameters and provenance (its run.json and what the store added at ingest)."""

    run_id: str
    complete: bool
    class_id: str
    class_name: str
    model: str
    created_at: str | None
    ingested_at: str | None
    completed_at: str | None
    bundle_path: str | None
    layers: tuple[str, ...]
    params: dict[str, Any]
    run_json: dict[str, Any]
    properties: dict[str, Any]


@dataclass(frozen=True)
class GroupMatch:
    """A group of run A matched to one of run B (status same/changed), or unmatched (disappeared/appeared)."""

    layer: str
    layer_index: int
    group_a: str | None
    group_b: str | None
    jaccard: float | None
    status: str
    neurons_a: tuple[str, ...] | None
    neurons_b: tuple[str, ...] | None


@dataclass(frozen=True)
class EdgeChange:
    """An edge of run A and its counterpart in run B under the group matching, with the weight change."""

    child_layer: str
    child_layer_index: int
    child_a: str | None
    parent_a: str | None
    child_b: str | None
    parent_b: str | None
    weight_a: float | None
    weight_b: float | None
    delta: float | None
    status: str


@dataclass(frozen=True)
class RunComparison(Tabular):
    """Two runs compared: matched/unmatched groups and same/changed/appeared/disappeared edges.

    `to_arrow("groups")` (the default) or `to_arrow("edges")`.
    """

    run_a: str
    run_b: str
    min_jaccard: float
    groups: tuple[GroupMatch, ...]
    edges: tuple[EdgeChange, ...]

    def count(self, status: str, what: str = "groups") -> int:
        """How many groups (or edges) have this status."""
        return sum(1 for row in getattr(self, what) if row.status == status)

    _parts = ("groups", "edges")

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return (GroupMatch, self.groups) if part == "groups" else (EdgeChange, self.edges)


@dataclass(frozen=True)
class LayerGroup:
    """A group of one layer with its channels and their activation_max in the run (for image debugging)."""

    run_id: str
    id: str
    group_id: str
    layer: str
    layer_index: int
    group_index: int
    neurons: tuple[str, ...]
    channels: tuple[int, ...]
    activation_max: tuple[float, ...]
    weight_up: float
    label: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Intervention:
    """A stored image-debugging result: masking one group, with its measured numbers in `properties`."""

    id: str
    run_id: str
    group_id: str
    layer: str
    properties: dict[str, Any]


def to_table(rows: Sequence[Any], row_type: type | None = None) -> pa.Table:
    """Dataclass rows as a pyarrow Table (nested tuples become lists; paths become strings); `row_type`
    names the columns of an empty table."""
    if not rows and row_type is not None and dataclasses.is_dataclass(row_type):
        return pa.table({f.name: pa.array([], pa.null()) for f in dataclasses.fields(row_type)})
    return pa.Table.from_pylist([{k: _plain(v) for k, v in _fields(row)} for row in rows])


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and paths as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in _fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any) -> str:
    """JSON text of query results (dataclasses or rows)."""
    return json.dumps(to_jsonable(value), indent=2, default=str)


def _fields(row: Any) -> Iterator[tuple[str, Any]]:
    for f in dataclasses.fields(row):
        yield f.name, getattr(row, f.name)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in _fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
