"""The `serve` command: the circuit explorer (neurflow_graph.serve) on a local port, over the graph store."""

from __future__ import annotations

import shlex

import click

from neurflow_graph import ids
from neurflow_graph.cli.common import errors_as_click, store_options

DEFAULT_PORT = 8735


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but 127.0.0.1 lets other machines read the store (warned).")
@store_options
@errors_as_click
def serve(port: int, host: str, data_dir: str | None, database: str | None) -> None:
    """Explore the stored circuits in a web browser: classes, circuits, groups, neurons, comparisons (read-only)."""
    from neurflow_graph.serve import require_extra

    require_extra()
    from neurflow_graph.serve.server import bind, open_to_others_warning, run_app, store_for_serving

    warning = open_to_others_warning(host)
    if warning:
        click.echo(warning, err=True)
    sock = bind(host, port)  # a port in use fails before the store is started
    try:
        with store_for_serving(data_dir, database, echo=click.echo) as conn:
            run_app(conn, sock, echo=lambda line: click.echo(line))
    finally:
        sock.close()


def next_steps(model: str, cls: str | None, data_dir: str | None, database: str | None) -> str:
    """What `ingest` suggests last: look at the circuit with no other software (`show`, `serve`)."""
    where = "".join(f" --{name} {shlex.quote(str(value))}" for name, value in
                    (("data-dir", data_dir), ("database", database)) if value)
    target = ids.class_id(model, cls) if cls and cls.isdigit() else (shlex.quote(cls) if cls else "CLASS")
    return (f"next, with no other software: `neurflow-graph show {target}{where}` writes its circuit as one page; "
            f"`neurflow-graph serve{where}` explores every stored class in your browser")
