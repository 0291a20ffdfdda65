"""Pieces every CLI command shares: one-line errors and the options that choose the graph store."""

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
