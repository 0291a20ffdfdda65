"""Pieces every CLI command shares: one-line errors, the store options, and options spelled alike everywhere
(`--run-id`, repeatable `--layer`, `--steps N|auto`, the class grammar), each defined once.

Nothing here imports torch: command modules import the library inside their command functions, so
`neurflow-graph --help`, `db`, `query` and `show` start at once.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import click

from neurflow_graph.errors import NeurflowGraphError

CLASS_GRAMMAR = "names or indices; repeat the option or comma-separate"
"""How every class option reads (`--class` of run and ingest, `--classes` of ingest and evaluate)."""


def class_names(values: Sequence[str]) -> tuple[str, ...]:
    """Every class a repeatable, comma-separated class option names (`--class 3,5 --class cat`), in order."""
    return tuple(c.strip() for value in values for c in value.split(",") if c.strip())


def errors_as_click(fn):
    """Turn the package's errors into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NeurflowGraphError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


data_dir_option = click.option(
    "--data-dir", envvar="NEURFLOW_GRAPH_DATA_DIR", type=click.Path(file_okay=False), default=None,
    help="Embedded store directory (env NEURFLOW_GRAPH_DATA_DIR; default ~/.local/share/neurflow-graph).",
)
"""``--data-dir``: where the embedded store lives."""

database_option = click.option(
    "--database", envvar="NEURFLOW_GRAPH_DATABASE", default=None,
    help="Database name (embedded default 'neurflow'; env NEURFLOW_GRAPH_DATABASE).",
)
"""``--database``: which database of the store."""


quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
"""``--quiet``: no progress bars."""


def store_options(fn):
    """``--data-dir`` and ``--database``; Neo4j is chosen by NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD (never options)."""
    return data_dir_option(database_option(fn))


def library_value(module: str, name: str) -> Callable[[], Any]:
    """A callable default reading a library constant when the option needs it (use with `cls=CalledDefault`)."""
    return lambda: getattr(importlib.import_module(module), name)


class CalledDefault(click.Option):
    """An option whose callable default (`library_value`) is shown by its value in `--help`, not as "(dynamic)"."""

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        return super().get_default(ctx, call=True)


class LibraryChoice(click.Choice):
    """A choice among a library constant's values, read when the option is used or its help shown, so that
    defining the option imports nothing (e.g. `LibraryChoice("neurflow_graph.engine.params", "METHODS")`)."""

    def __init__(self, module: str, name: str, extra: Sequence[str] = ()) -> None:
        self._source = (module, name)
        self._extra = tuple(extra)
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        module, name = self._source
        return (*self._extra, *getattr(importlib.import_module(module), name))

    @choices.setter
    def choices(self, _value: Sequence[str]) -> None:  # click.Choice.__init__ assigns it; the constant wins
        pass


def open_store(data_dir: str | None, database: str | None):
    """A store Connection (a context manager): Neo4j when NEO4J_URI is set, else the embedded server."""
    from neurflow_graph.store import connect

    return connect(data_dir, database=database)


class StepsType(click.ParamType):
    """Integrated-gradients steps: an integer >= 2, or ``auto`` (adaptive, with a tolerance)."""

    name = "steps"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            steps = int(value)
        except (TypeError, ValueError):
            self.fail(f"expected an integer >= 2 or 'auto', got {value!r}", param, ctx)
        if steps < 2:
            self.fail(f"expected an integer >= 2 or 'auto', got {value!r}", param, ctx)
        return steps


STEPS = StepsType()


def layer_option(help: str):
    """``--layer NAME`` (repeat, or comma-separate; ``--layers`` is the same option): read with `layer_names`."""
    return click.option("--layer", "--layers", "layers", multiple=True, help=help)


def layer_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """The names given to repeated, comma-separated ``--layer`` options, in order."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def run_id_option(help: str):
    """``--run-id RUN_ID`` (``--run`` is the same option): one stored run of the class."""
    return click.option("--run-id", "--run", "run_id", help=help)
