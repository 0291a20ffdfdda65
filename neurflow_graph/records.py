"""The typed records every reader shares (query, labels, render, debugging): one Group, one Edge, one Run,
one ClassRef, and the one class-resolution rule.

A record converts for notebooks: `to_arrow()` (a pyarrow Table, one row per record) and `to_pandas()`
(pandas is optional); a list of records is a `Records`. Ids inside records are minted by `ids`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from neurflow_graph import ids
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.errors import ConfigError, MissingDependency, NeurflowGraphError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

T = TypeVar("T")

HTML_VIEWS: dict[type, Callable[[Any], str]] = {}
"""Notebook views by record type; the render layer registers its pages here (records know nothing of it)."""
_VIEW_MODULES: list[str] = []


def register_html_views(module: str) -> None:
    """Name a module that fills `HTML_VIEWS` when imported; it is imported the first time a view is looked up."""
    if module not in _VIEW_MODULES:
        _VIEW_MODULES.append(module)


def html_view(kind: type) -> Callable[[Any], str] | None:
    """The notebook view registered for `kind`, importing the registered view modules first if need be."""
    while kind not in HTML_VIEWS and _VIEW_MODULES:
        importlib.import_module(_VIEW_MODULES.pop(0))
    return HTML_VIEWS.get(kind)


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
class ClassRef:
    """A class of a model (`class_id` is `{model}/{index}`); read from the store it carries its run counts."""

    class_id: str
    model: str
    index: int
    name: str
    n_runs: int = 0
    n_complete: int = 0
    latest_run: str | None = None


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
class Group:
    """A neuron group of one run: members, exemplars and (if labelled) its concept label.

    `id` is the node id (`{run_id}/{group_id}`); `channels`/`activation_max`/`weight_up` are filled where a
    reader needs them (image debugging), empty otherwise.
    """

    id: str
    group_id: str
    layer: str
    layer_index: int
    group_index: int
    is_root: bool
    neurons: tuple[str, ...] = ()
    exemplars: tuple[Exemplar, ...] = ()
    label: str | None = None
    description: str | None = None
    label_key: str | None = None
    run_id: str | None = None
    channels: tuple[int, ...] = ()
    activation_max: tuple[float, ...] = ()
    weight_up: float = 0.0

    @property
    def patch_ids(self) -> tuple[int, ...]:
        """The exemplars' patch ids, best first."""
        return tuple(e.patch_id for e in self.exemplars)

    @property
    def thumbnails(self) -> tuple[str | None, ...]:
        """The exemplars' thumbnail paths inside the bundle, best first (None where a patch has none)."""
        return tuple(e.thumbnail for e in self.exemplars)


@dataclass(frozen=True)
class Edge:
    """A FEEDS edge child -> parent (group ids within the run); `rank` 0 is the parent's strongest input."""

    child: str
    parent: str
    child_layer: str = ""
    parent_layer: str = ""
    child_layer_index: int = -1
    parent_layer_index: int = -1
    weight: float = 0.0
    n_edges: int = 0
    rank: int = 0
    relation: str | None = None
    relation_key: str | None = None


@dataclass(frozen=True)
class Run(Tabular):
    """A stored run: its class, completeness, parameters and provenance (run.json and what ingest added)."""

    run_id: str
    complete: bool
    class_id: str
    class_name: str
    model: str
    created_at: str | None = None
    ingested_at: str | None = None
    completed_at: str | None = None
    bundle_path: str | None = None
    layers: tuple[str, ...] = ()  # empty: the record's (`meta.layers`)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # empty: as the record's run.json has them
    run_json: dict[str, Any] = dataclasses.field(default_factory=dict)
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.run_json and (not self.layers or not self.params) and self.meta is not None:
            object.__setattr__(self, "layers", self.layers or self.meta.layers)
            object.__setattr__(self, "params", self.params or self.meta.recorded_params)

    @property
    def class_index(self) -> int:
        """The class's index in the model's output (from its id)."""
        return ids.class_index(self.class_id)

    @functools.cached_property
    def meta(self) -> RunMeta | None:
        """The stored run.json as the one typed run record (`engine.meta.RunMeta`, torch-free), parsed once; None
        when it is not one this release reads (the store writes only runs whose run.json parses)."""
        try:
            return RunMeta.parse(self.run_json, f"run {self.run_id}")
        except NeurflowGraphError:
            return None


def resolve_class(ref: str | int, classes: Sequence[ClassRef], model: str | None = None, *,
                  error: type[NeurflowGraphError] = ConfigError, unknown: str = "unknown class {ref}",
                  where: str = "; give an index instead", every_class: bool = False) -> ClassRef:
    """The class meant by `ref`: its id, index or name (exact, then case-insensitive), among `classes`.

    `model` narrows the candidates; an unknown or ambiguous ref is `error`: `unknown` (formatted with the
    quoted ref), close matches, then `where` (what the candidates are, e.g. "; classes in the store: …").
    With `every_class` (the candidates are all of a model's classes, indexed 0..n-1) an unknown index is
    reported as out of the model's range.
    """
    text = str(ref).strip()
    pool = [c for c in classes if model is None or c.model == model]
    found = [c for c in pool if c.class_id == text]
    if not found and model is not None:
        found = [c for c in pool if c.class_id == ids.class_id(model, text)]
    if not found and text.lstrip("-").isdigit():
        index = int(text)
        found = [c for c in pool if c.index == index]
        if not found and every_class:
            raise error(f"class index {index} is out of range; the model has {len(pool)} classes "
                        f"(0..{len(pool) - 1})")
    if not found:
        found = [c for c in pool if c.name == text] or [c for c in pool if c.name.lower() == text.lower()]
    if not found:
        close = difflib.get_close_matches(text, [c.name for c in pool] + [c.class_id for c in pool], n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise error(f"{unknown.format(ref=repr(text))}{hint}{where}")
    if len(found) > 1:
        raise error(f"class {text!r} is ambiguous: {', '.join(c.class_id for c in found)}; "
                    "pass the class id ({model}/{index})")
    return found[0]


def to_table(rows: Sequence[Any], row_type: type | None = None) -> pa.Table:
    """Dataclass rows as a pyarrow Table (nested tuples become lists; paths become strings); `row_type`
    names the columns of an empty table."""
    import pyarrow as pa

    if not rows and row_type is not None and dataclasses.is_dataclass(row_type):
        return pa.table({f.name: pa.array([], pa.null()) for f in dataclasses.fields(row_type)})
    return pa.Table.from_pylist([{k: to_jsonable(v) for k, v in _fields(row)} for row in rows])


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
