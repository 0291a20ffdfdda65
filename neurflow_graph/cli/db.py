"""The ``db`` commands: start, stop and inspect the embedded graph store (an ArcadeDB server on 127.0.0.1)."""

from __future__ import annotations

import click

from neurflow_graph.cli.common import data_dir_option, database_option, errors_as_click


@click.group()
def db() -> None:
    """Manage the embedded graph store (an ArcadeDB server on 127.0.0.1)."""


def _browser_help(info, database: str | None) -> str:
    from neurflow_graph.store.connection import browser_help, embedded_database_name
    from neurflow_graph.store.server import ROOT_USER

    return browser_help(info.bolt_uri, ROOT_USER, embedded_database_name(database), info.password_file)


@db.command("start")
@data_dir_option
@database_option
@errors_as_click
def db_start(data_dir: str | None, database: str | None) -> None:
    """Start the embedded server (or find the one already running), and say how to connect to it."""
    from neurflow_graph.store import resolve_data_dir, start

    info = start(data_dir)
    click.echo(f"running: {info.bolt_uri} (pid {info.pid}), data in {resolve_data_dir(data_dir)}; "
               f"user root, password in {info.password_file}")
    click.echo(_browser_help(info, database))


@db.command("stop")
@data_dir_option
@errors_as_click
def db_stop(data_dir: str | None) -> None:
    """Stop the embedded server cleanly (SIGTERM, then wait)."""
    from neurflow_graph.store import stop

    click.echo("stopped" if stop(data_dir) else "not running")


@db.command("status")
@data_dir_option
@database_option
@errors_as_click
def db_status(data_dir: str | None, database: str | None) -> None:
    """Say whether the embedded server runs, where, and how to connect to it."""
    from neurflow_graph.store import status

    found = status(data_dir)
    click.echo(found.message)
    if found.state == "running" and found.info is not None:
        click.echo(_browser_help(found.info, database))


@db.command("credentials")
@data_dir_option
@database_option
@click.option("--show-password", is_flag=True, help="Also print the root password (it is never logged).")
@errors_as_click
def db_credentials(data_dir: str | None, database: str | None, show_password: bool) -> None:
    """Print the embedded store's Bolt URI, user and database (the password only with --show-password)."""
    from neurflow_graph.store import server
    from neurflow_graph.store.connection import embedded_database_name

    found = server.status(data_dir)
    if found.state == "running" and found.info is not None:
        uri = found.info.bolt_uri
    else:
        remembered = server.remembered_bolt_uri(data_dir)
        uri = (f"{remembered} (not running: `neurflow-graph db start`)" if remembered
               else "none yet (never started: `neurflow-graph db start`)")
    password_file = server.layout(data_dir).password_file
    click.echo(f"uri: {uri}")
    click.echo(f"user: {server.ROOT_USER}")
    click.echo(f"database: {embedded_database_name(database)}")
    if show_password:
        click.echo(f"password: {server.read_password(data_dir)}")
    else:
        click.echo(f"password: in {password_file} (add --show-password to print it)")


@db.command("path")
@data_dir_option
def db_path(data_dir: str | None) -> None:
    """Print the embedded store's data directory."""
    from neurflow_graph.store import resolve_data_dir

    click.echo(str(resolve_data_dir(data_dir)))
