"""Pieces every CLI command shares: one-line errors, the store options, and options spelled alike everywhere
(`--run-id`, repeatable `--layer`, `--steps N|auto`)."""

from __future__ import annotations

import functools

import click

from neurflow_graph.errors import NeurflowGraphError


def errors_as_click(fn):
    """Turn the package's errors into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NeurflowGraphError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def store_options(fn):
    """``--data-dir`` and ``--database``; Neo4j is chosen by NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD (never options)."""
    fn = click.option(
        "--database", envvar="NEURFLOW_GRAPH_DATABASE", default=None,
        help="Database name (embedded default 'neurflow'; env NEURFLOW_GRAPH_DATABASE).",
    )(fn)
    return click.option(
        "--data-dir", envvar="NEURFLOW_GRAPH_DATA_DIR", type=click.Path(file_okay=False), default=None,
        help="Embedded store directory (env NEURFLOW_GRAPH_DATA_DIR; default ~/.local/share/neurflow-graph).",
    )(fn)


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
