"""The ``neurflow-graph`` command line: parses options and calls the library, nothing more.

Commands that compute import the engine inside their functions, so `--help` and the store and query
commands start without torch (tests/test_cli_startup.py checks it).
"""

from __future__ import annotations

from pathlib import Path

import click

from neurflow_graph import ids
from neurflow_graph.cli.common import (
    CLASS_GRAMMAR,
    STEPS,
    LibraryChoice,
    class_names,
    errors_as_click,
    open_store,
    quiet_option,
    store_options,
)
from neurflow_graph.cli.serve import next_steps

_PARAMS = "neurflow_graph.engine.params"  # the choices of --method, --precision and --faithfulness, read when used


def run_options(fn):
    """Options that override a recipe's fields, shared by ``run`` and ``ingest``."""
    options = [
        click.option("--class", "classes", multiple=True, help=f"Class(es) to compute ({CLASS_GRAMMAR})."),
        click.option("--images", type=click.Path(file_okay=False), help="Image folder (replaces the recipe's source)."),
        click.option("--max-images", type=int, help="Keep at most this many correctly predicted images."),
        click.option("--weights", help="Torchvision weights name or a local checkpoint path."),
        click.option("--k", type=int, help="Top patches per neuron (concept size)."),
        click.option("--tau", type=int, help="Core neurons kept per target."),
        click.option("--steps", "n_steps", type=STEPS, help="Integrated-gradients steps, or 'auto' with --tolerance."),
        click.option("--tolerance", type=float, help="Completeness error to reach with --steps auto."),
        click.option("--method", type=LibraryChoice(_PARAMS, "METHODS"),
                     help="Quadrature rule for integrated gradients."),
        click.option("--precision", type=LibraryChoice(_PARAMS, "PRECISIONS", ("auto",)),
                     help="auto: bf16 autocast on CUDA, fp32 on a CPU (see docs/performance.md)."),
        click.option("--device", help="auto, cpu, cuda or cuda:N."),
        click.option("--seed", type=int, help="Random seed."),
        click.option("--batch-size", "batch_size", type=int,
                     help="Patches per forward pass when computing activations (the recipe's batch_size)."),
        click.option("--internal-batch-size", "internal_batch_size", type=int,
                     help="(patch, step) rows per integrated-gradients pass; bounds memory."),
        click.option("--faithfulness", type=LibraryChoice(_PARAMS, "FAITHFULNESS_LEVELS"),
                     help="Measure how far to trust each circuit (masking core vs random neurons): per layer "
                          "(default), also per neuron group, or off. Not part of the run id."),
        quiet_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def load_recipe_with(recipe_path: str, overrides: dict):
    """The recipe at ``recipe_path`` with command-line overrides applied."""
    from neurflow_graph.recipes import load_recipe

    if overrides.get("classes"):
        overrides = {**overrides, "classes": class_names(overrides["classes"])}
    return load_recipe(recipe_path).with_overrides(**overrides)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurflow-graph")
def main() -> None:
    """NeurFlow circuits of vision models, computed and stored in a graph database."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Bundle directory to write (one subdirectory per class when several classes run).")
@run_options
@errors_as_click
def run(recipe: str, out: str, quiet: bool, **overrides) -> None:
    """Compute the NeurFlow circuit of RECIPE's class(es) and write a bundle to --out."""
    from neurflow_graph.bundle.summary import describe_bundle
    from neurflow_graph.jobs import compute_class
    from neurflow_graph.recipes import prepare_model

    spec = load_recipe_with(recipe, overrides)
    prepared = prepare_model(spec)
    for name in spec.classes:
        target = Path(out) if len(spec.classes) == 1 else Path(out) / ids.slug(name)
        outcome = compute_class(prepared, name, target, progress=not quiet, log=click.echo)
        click.echo(describe_bundle(outcome.bundle))


# -- the graph store ----------------------------------------------------------------------------------


def _ingest_options(fn):
    """Options of ``ingest`` that choose the classes, where bundles go, and the Ray cluster."""
    options = [
        click.option("--classes", "class_list", multiple=True,
                     help=f"'all', or the classes to ingest ({CLASS_GRAMMAR})."),
        click.option("--classes-file", type=click.Path(dir_okay=False), help="A file with one class a line."),
        click.option("--bundles", type=click.Path(file_okay=False),
                     help="Bundle root, one folder per run id; a complete bundle there is reused. With --ray, "
                          "a path every node sees (default runs/RECIPE).",),
        click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
                     help="Compute classes on Ray: a local Ray, or the cluster at ADDRESS (ray://HOST:10001, auto)."),
        click.option("--workers", type=click.IntRange(min=1), help="--ray: at most this many workers."),
        click.option("--gpus-per-worker", type=click.FloatRange(min=0),
                     help="--ray: GPUs per worker (default 1 where the cluster has GPUs, else 0)."),
        click.option("--max-retries", type=click.IntRange(min=0), default=3, show_default=True,
                     help="--ray: times a class is retried when its worker dies."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Where bundles go (default runs/RECIPE/CLASS).")
@click.option("--force", is_flag=True, help="Recompute and rewrite classes already complete in the store.")
@_ingest_options
@store_options
@run_options
@errors_as_click
def ingest(recipe: str, out: str | None, force: bool, data_dir: str | None, database: str | None, quiet: bool,
           class_list: str | None, classes_file: str | None, bundles: str | None, ray_address: str | None,
           workers: int | None, gpus_per_worker: float | None, max_retries: int, **overrides) -> None:
    """Compute RECIPE's class circuits and write them into the graph store (the main job).

    Classes whose run (same model, images and parameters) is already complete in the store are skipped
    unless --force. The model is loaded once for all classes (once per worker with --ray).
    """
    from neurflow_graph.bundle.summary import describe_bundle
    from neurflow_graph.jobs import ingest as ingest_classes
    from neurflow_graph.jobs import select_classes
    from neurflow_graph.query.describe import describe_stored_run

    if out and bundles:
        raise click.UsageError("give --out or --bundles, not both")
    if overrides.get("classes") and (class_list or classes_file):
        raise click.UsageError("give --class or --classes/--classes-file, not both")
    spec = load_recipe_with(recipe, overrides)
    classes = select_classes(spec, ",".join(class_names(class_list)) if class_list else None, classes_file)
    with open_store(data_dir, database) as conn:
        click.echo(f"store: {conn.uri} (database {conn.database})")
        if ray_address is not None:
            _ingest_on_ray(spec, conn, classes, force, bundles or out or str(Path("runs") / spec.name),
                           ray_address, workers, gpus_per_worker, max_retries, quiet)
            click.echo(conn.browser_help())
            click.echo(next_steps(spec.preset, next(iter(classes), None), data_dir, database))
            return

        def settled(outcome) -> None:
            if outcome.bundle is not None:
                click.echo(describe_bundle(outcome.bundle))
            if outcome.write is not None:
                w = outcome.write
                click.echo(f"wrote {w.nodes} nodes and {w.relationships} relationships in "
                           f"{w.batches} transactions ({w.seconds:.1f} s)")
            click.echo(describe_stored_run(conn, outcome.run_id, ids.class_id(spec.preset, outcome.class_index)))

        ingest_classes(spec, conn, classes, force=force, out=bundles or out, by_run_id=bundles is not None,
                       progress=not quiet, log=click.echo, on_class=settled)
        click.echo(conn.browser_help())
        click.echo(next_steps(spec.preset, next(iter(classes), None), data_dir, database))


def _ingest_on_ray(spec, conn, classes, force, bundles, address, workers, gpus_per_worker, max_retries, quiet):
    """``ingest --ray``: one line per class, a summary, and a non-zero exit naming the classes that failed."""
    from tqdm.auto import tqdm

    from neurflow_graph.distributed import RayOptions, ingest_on_ray

    def settled(o) -> None:
        skip = ("request already complete in the store; skipped before scheduling" if o.skipped_by == "request"
                else "already complete in the store; skipped")
        what = {"skipped": skip, "failed": f"FAILED: {o.error}"}.get(o.status)
        if what is None:
            w = o.write
            what = (f"{'computed' if o.computed else 'bundle reused'}, stored {w.nodes} nodes and "
                    f"{w.relationships} relationships ({w.seconds:.1f} s)")
        label = f"class {o.class_index} ({o.class_name})" if o.class_index is not None else f"class {o.name}"
        tqdm.write(f"{label}: {what}" + (f"; run {o.run_id}" if o.run_id else ""))

    options = RayOptions(address=address or None, workers=workers, gpus_per_worker=gpus_per_worker,
                         max_retries=max_retries)
    report = ingest_on_ray(spec, conn, classes, force, bundles=bundles, options=options, progress=not quiet,
                           log=click.echo, on_class=settled)
    click.echo(f"{len(report.outcomes)} classes: computed {report.computed}, stored {report.count('stored')}, "
               f"skipped {report.count('skipped')}, failed {report.count('failed')}")
    if report.failed:
        raise click.ClickException("failed classes: " + ", ".join(o.name for o in report.failed))


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@store_options
@quiet_option
@errors_as_click
def load(bundles: tuple[str, ...], data_dir: str | None, database: str | None, quiet: bool) -> None:
    """Write existing bundle directories into the graph store, without recomputing anything."""
    from neurflow_graph.bundle.tables import read_bundle_tables
    from neurflow_graph.jobs import store_bundle

    checked = [read_bundle_tables(bundle_dir) for bundle_dir in bundles]  # every bundle checked before any write
    with open_store(data_dir, database) as conn:
        for bundle_dir, tables in zip(bundles, checked, strict=True):
            report = store_bundle(conn, tables, progress=not quiet)
            click.echo(f"{bundle_dir}: run {report.run_id}: {report.nodes} nodes, {report.relationships} "
                       f"relationships in {report.batches} transactions ({report.seconds:.1f} s)")


def _register_commands() -> None:
    """Commands that live in their own modules (store, queries, debugging, evaluation, labels) join the main
    group here."""
    from neurflow_graph.cli.db import db
    from neurflow_graph.cli.evaluation import evaluate
    from neurflow_graph.cli.labels import label
    from neurflow_graph.cli.query import debug, query, show
    from neurflow_graph.cli.serve import serve

    for command in (db, query, show, debug, evaluate, label, serve):
        main.add_command(command)


_register_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
