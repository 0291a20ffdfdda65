"""The `query`, `show` and `debug` commands: parse options, call the query, render and debugging libraries.

Registered on the main group by `neurflow_graph.cli` (`main.add_command(query)` …).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from neurflow_graph.cli.common import errors_as_click, open_store, quiet_option, run_id_option, store_options
from neurflow_graph.errors import QueryError

# Parameters whose value names a stored thing: checked before the query runs, so a typo is a one-line error.
_CLASS_PARAMS = ("class_id",)
_RUN_PARAMS = ("run_id", "run_a", "run_b")


def parse_param(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as JSON when it is JSON (numbers, true/false/null, lists), else as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise QueryError(f"--param expects KEY=VALUE (e.g. class_id=digits/3), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


# Read queries the library runs as steps of a command or of another query (schema checks, the writer's reads,
# the labeller's reads, the halves of shared_groups): listed apart, after the queries a person runs.
_INTERNAL = ("class_info", "class_runs", "complete_runs", "label_edges", "label_groups", "label_run",
             "label_runs_of_class", "list_databases", "run_classes", "run_counts", "schema_constraints",
             "schema_indexes", "schema_version_read", "shares_memberships", "shares_of_class", "shares_top",
             "shares_top_groups")


def _description(header: str) -> str:
    """The header's first sentence, whole, on one line (the header wraps it over several `//` lines)."""
    text = " ".join(header.split("Parameters:")[0].split())
    end = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    return text[: end.start() + 1] if end else text


def _list_queries() -> str:
    from neurflow_graph.query.library import query_info, read_queries

    names = read_queries()
    user = [n for n in names if n not in _INTERNAL]
    lines = ["Queries (neurflow-graph query NAME --param KEY=VALUE):"]
    for group in (user, [n for n in names if n in _INTERNAL]):
        if group is not user:
            lines += ["", "Internal (read queries the commands run as steps; the writer's queries are not listed):"]
        for name in group:
            info = query_info(name)
            lines.append(f"{name:<24} {_description(info.header)}")
            lines.append(f"{'':<24}   parameters: {info.describe_parameters()}")
    return "\n".join(lines)


@click.command()
@click.argument("name", required=False)
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A query parameter (repeat); VALUE is read as JSON when it parses (3, 0.5, null, true).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
@click.option("--list", "list_only", is_flag=True, help="List the available queries and their parameters.")
@click.option("--width", type=click.IntRange(min=8), default=48, show_default=True,
              help="Widest table cell, in characters (longer values are cut with …).")
@store_options
@errors_as_click
def query(name: str | None, params: tuple[str, ...], as_json: bool, list_only: bool, width: int,
          data_dir: str | None, database: str | None) -> None:
    """Run the read query NAME (a file in cypher/) with --param KEY=VALUE and print its rows."""
    from neurflow_graph.query.fetch import fetch_class, fetch_run_info, why_no_shared_groups
    from neurflow_graph.query.library import run_query, with_defaults
    from neurflow_graph.query.table import format_table
    from neurflow_graph.records import dumps

    if list_only or name is None:
        click.echo(_list_queries())
        return
    values = dict(parse_param(p) for p in params)
    values = with_defaults(name, values)  # unknown name or parameter, missing parameter: fail before connecting
    with open_store(data_dir, database) as conn:
        for key in _CLASS_PARAMS:
            if values.get(key) is not None:
                values[key] = fetch_class(conn, values[key]).class_id
        for key in _RUN_PARAMS:
            if values.get(key) is not None:
                fetch_run_info(conn, str(values[key]))
        rows = run_query(conn, name, **values)
        why = why_no_shared_groups(conn, values["min_jaccard"], values["layer"]) \
            if name == "shared_groups" and not rows else None
    click.echo(dumps(rows) if as_json else format_table(rows, width))
    if why:
        click.echo(why, err=True)


@click.command()
@click.argument("class_name", metavar="CLASS")
@run_id_option("Show this run of the class [default: its latest complete run].")
@click.option("--top", "top_n", type=click.IntRange(min=1),
              help="Keep only the N strongest inputs (by |weight|) of each group.")
@click.option("--exemplars", type=click.IntRange(min=0, max=16), default=4, show_default=True,
              help="Exemplar thumbnails drawn per group.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="HTML file to write [default: circuit-MODEL-INDEX.html in the current folder].")
@click.option("--png", is_flag=True, help="Also render the page to PNG (next to the HTML) with headless Chromium.")
@store_options
@errors_as_click
def show(class_name: str, run_id: str | None, top_n: int | None, exemplars: int, out: str | None, png: bool,
         data_dir: str | None, database: str | None) -> None:
    """Render the circuit of CLASS (id, index or name) as one self-contained HTML page."""
    from neurflow_graph.query.fetch import fetch_class_circuit, fetch_run_info
    from neurflow_graph.render import screenshot, write_circuit_html
    from neurflow_graph.render.faithfulness import faithfulness_text

    with open_store(data_dir, database) as conn:
        circuit = fetch_class_circuit(conn, class_name, run_id=run_id, top_n=top_n)
        run = fetch_run_info(conn, circuit.run_id)
    target = Path(out) if out else Path(f"circuit-{circuit.class_id.replace('/', '-')}.html")
    page = write_circuit_html(circuit, target, run, exemplars)
    click.echo(f"circuit of {circuit.class_id} (run {circuit.run_id}): {len(circuit.groups)} groups, "
               f"{len(circuit.edges)} edges -> {page}")
    click.echo(faithfulness_text(run))
    missing = sum(1 for g in circuit.groups for e in g.exemplars[:exemplars] if e.path is None)
    if missing:
        click.echo(f"note: {missing} thumbnail(s) not found under {circuit.bundle_path} (grey boxes drawn)")
    if png:
        shot = screenshot(page, page.with_suffix(".png"), width=1400, height=_page_height(circuit))
        click.echo(f"screenshot -> {shot}")


def _page_height(circuit) -> int:
    return min(4000, 420 + 220 * len(circuit.layers()) + 28 * (len(circuit.groups) + len(circuit.edges)))


@click.command()
@click.argument("class_name", metavar="CLASS")
@click.option("--recipe", required=True, type=click.Path(dir_okay=False),
              help="Recipe (ingest/*.toml) naming the model the circuit was computed with.")
@click.option("--images", type=click.Path(file_okay=False, exists=True),
              help="Folder of images to score and mask [default: the images the run was computed on; when they "
                   "cannot be loaded, the recipe's: for digits every image of the split predicted as CLASS, false "
                   "positives included, else the class's own images].")
@click.option("--layer", help="Layer whose neuron groups are scored and masked [default: the layer under the logit].")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Random neuron sets (of each group's size, from the same layer) per group, one per seed.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed of the random neuron sets.")
@click.option("--top", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images listed per group (largest logit drop first).")
@click.option("--max-images", type=click.IntRange(min=1), default=200, show_default=True,
              help="Score at most this many images.")
@run_id_option("Debug this run of the class [default: its latest complete run].")
@click.option("--device", help="auto, cpu, cuda or cuda:N [default: the recipe's].")
@click.option("--no-store", is_flag=True, help="Do not write Intervention nodes back to the store.")
@quiet_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for the pages (index.html, group-*.html, group-*.png) and report.json.")
@store_options
@errors_as_click
def debug(class_name: str, recipe: str, images: str | None, layer: str | None, seeds: int, seed: int, top: int,
          max_images: int, run_id: str | None, device: str | None, no_store: bool, quiet: bool, out: str,
          data_dir: str | None, database: str | None) -> None:
    """Image debugging of CLASS (paper 5.1): group-confidence scores, masking each group vs random sets."""
    from neurflow_graph.debugging.class_debug import debug_class, describe_group
    from neurflow_graph.render.debug import write_debug_pages

    with open_store(data_dir, database) as conn:
        found = debug_class(conn, class_name, recipe, images=images, layer=layer, run_id=run_id, seeds=seeds,
                            seed=seed, top=top, max_images=max_images, device=device, store=not no_store,
                            progress=not quiet, on_start=click.echo)
    pages = write_debug_pages(found.result, out, class_name=found.info.name, image_set=found.images.description,
                              exemplars=found.exemplars, intervention_ids=found.intervention_ids)
    for g in found.result.groups:
        click.echo(f"  {describe_group(g)}")
    stored = f"; {len(found.intervention_ids)} Intervention node(s) stored" if found.intervention_ids else ""
    click.echo(f"pages -> {pages['index.html']}{stored}")
