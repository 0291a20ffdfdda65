"""The ``label`` command: parse options, read the endpoint from the environment, call ``label_circuit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from neurflow_graph.cli.common import (
    CalledDefault,
    errors_as_click,
    layer_names,
    layer_option,
    library_value,
    open_store,
    run_id_option,
    store_options,
)

if TYPE_CHECKING:
    from neurflow_graph.labels.labeler import ItemResult


def _echo(result: ItemResult) -> None:
    target = f"{result.kind} {result.target}"
    if result.status == "failed":
        click.echo(f"  {target}: FAILED: {result.error}", err=True)
    elif result.status == "skipped":
        click.echo(f"  {target}: skipped ({result.error})", err=True)
    else:
        status = "explained" if result.kind == "relation" and result.status == "labelled" else result.status
        click.echo(f"  {target}: {status}" + (f": {result.text}" if result.text is not None else ""))


@click.command("label")
@click.argument("class_ref", metavar="CLASS")
@layer_option("Label only the groups of this layer (repeat or comma-separate), and their relations to "
              "their parents [default: every layer].")
@run_id_option("Label this run of CLASS [default: its latest complete run, as `show` picks it].")
@click.option("--force", is_flag=True, help="Ask again for groups and edges labelled already (ignore the cache).")
@click.option("--dry-run", "dry_run", type=click.Path(file_okay=False),
              help="Write every prompt (text and grid PNGs, plus manifest.json) to this folder; send nothing.")
@click.option("--max-relations", cls=CalledDefault, type=click.IntRange(min=0), show_default=True,
              default=library_value("neurflow_graph.labels.labeler", "DEFAULT_MAX_RELATIONS"),
              help="Heaviest incoming edges explained per parent group (0: no relations).")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False),
              help="The run's bundle folder (for its thumbnails) [default: the path recorded when it was loaded].")
@store_options
@errors_as_click
def label(class_ref: str, layers: tuple[str, ...], run_id: str | None, force: bool, dry_run: str | None,
          max_relations: int, bundle_dir: str | None, data_dir: str | None, database: str | None) -> None:
    """Name the neuron groups of CLASS's circuit with a multimodal LLM, and explain its heaviest edges.

    The endpoint is any OpenAI-compatible chat-completions server: set NEURFLOW_LLM_BASE_URL,
    NEURFLOW_LLM_MODEL and, if needed, NEURFLOW_LLM_API_KEY. Labels are stored on the graph
    (NeuronGroup.label, .description; FEEDS.relation).
    """
    from neurflow_graph.labels.client import HOW_TO_CONFIGURE, ChatClient, EndpointNotConfigured, LLMSettings
    from neurflow_graph.labels.labeler import label_circuit

    settings = LLMSettings.from_env()
    if settings is None and dry_run is None:
        raise EndpointNotConfigured(f"no LLM endpoint is configured: {HOW_TO_CONFIGURE}; or pass --dry-run DIR "
                                    "to write the prompts without sending them")
    client = ChatClient(settings) if settings is not None else None
    with open_store(data_dir, database) as conn:
        outcome = label_circuit(conn, class_ref, client=client, run_id=run_id, layers=list(layer_names(layers)) or None,
                               force=force, dry_run_dir=dry_run, max_relations=max_relations,
                               bundle_dir=bundle_dir, on_result=_echo)
    if not outcome.ok:
        raise click.ClickException(outcome.summary())
    click.echo(outcome.summary())
