"""``evaluate`` commands: parse options, build the runs to evaluate, call ``run_experiment``. Nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from neurflow_graph.cli.common import (
    CLASS_GRAMMAR,
    STEPS,
    class_names,
    errors_as_click,
    layer_names,
    layer_option,
    open_store,
    quiet_option,
    store_options,
)


def _source_options(samples_help: str, tau_help: str, targets: bool = False, max_size: bool = False):
    """Options shared by the three commands: what to evaluate, where to write, how much to sample."""

    def decorate(fn):
        options = [
            click.argument("recipe", required=False, type=click.Path(dir_okay=False)),
            click.option("--bundle", "bundles", multiple=True, type=click.Path(file_okay=False, exists=True),
                         help="Evaluate this existing run bundle instead of a RECIPE (repeat for several)."),
            click.option("--out", required=True, type=click.Path(file_okay=False),
                         help="Folder for the results (JSON, Parquet, PNG) and, with a RECIPE, the runs' bundles."),
            click.option("--classes", multiple=True,
                         help=f"Classes of the RECIPE to evaluate ({CLASS_GRAMMAR})."),
            click.option("--samples", type=click.IntRange(min=1), help=samples_help),
            click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw."),
            click.option("--tau", "taus", multiple=True, type=click.IntRange(min=1), help=tau_help),
            click.option("--k", type=click.IntRange(min=1), help="RECIPE runs: top patches per neuron."),
            click.option("--steps", "n_steps", type=STEPS,
                         help="RECIPE runs: integrated-gradients steps, or 'auto' (the recipe's tolerance)."),
            click.option("--max-images", type=click.IntRange(min=1), help="RECIPE runs: images kept per class."),
            click.option("--augment", type=click.IntRange(min=0),
                         help="RECIPE runs with sample photos: augmented copies per photo."),
            layer_option("RECIPE runs: a layer, logit layer first (repeat or comma-separate)."),
            click.option("--device", help="auto, cpu, cuda or cuda:N (default: the recipe's, or auto)."),
            quiet_option,
            click.option("--no-store", is_flag=True,
                         help="Do not store Evaluation nodes in the graph (default: store them, loading the "
                              "evaluated runs' bundles first when they are not stored yet)."),
            store_options,
        ]
        if targets:
            options.append(click.option("--targets", type=click.IntRange(min=1),
                                        help="Target neurons drawn per circuit layer and class [default: 5]."))
        if max_size:
            options.append(click.option("--max-size", type=click.IntRange(min=1),
                                        help="Largest random set (capped at the layer width - 1) [default: 50]."))
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def evaluate() -> None:
    """Reproduce the paper's evaluation (section 4) on a RECIPE's classes or on existing bundles."""


@evaluate.command()
@_source_options("Random sets per target [default: 100].",
                 "Core-set size to test (repeat for several) [default: the run's tau].", targets=True)
@errors_as_click
def optimality(**options) -> list[dict]:
    """Knockout loss of core sets vs random sets of the same size (paper Figure 4)."""
    return _run("optimality", options)


@evaluate.command()
@_source_options("Random sets per (tau, layer, mode, scope) [default: 20].",
                 "Core neurons per target (repeat for several) [default: 4, 8, 16 as far as the run allows].")
@errors_as_click
def fidelity(**options) -> list[dict]:
    """Class accuracy with core / random / L2-weight neurons masked or retained (paper Figure 5)."""
    return _run("fidelity", options)


@evaluate.command()
@_source_options("Random sets per set size [default: 20].",
                 "Tau of the circuit the targets are drawn from [default: the run's tau].", targets=True, max_size=True)
@errors_as_click
def weights(**options) -> list[dict]:
    """Correlation of summed |IG| of random sets with the concept change of their knockout (paper Figure 6)."""
    return _run("weights", options)


def _run(kind: str, o: dict) -> list[dict]:
    from neurflow_graph.evaluation.experiments import run_experiment

    params = {"taus": list(o["taus"]) or None}
    for name in ("samples", "targets", "max_size"):
        if o.get(name) is not None:
            params[name] = o[name]
    if kind == "weights" and len(o["taus"]) > 1:
        raise click.UsageError("weights takes one --tau (the circuit its targets are drawn from)")
    subjects, title = _subjects(kind, o, params)
    output = run_experiment(kind, subjects, o["out"], params, o["seed"], progress=not o["quiet"], title=title)
    click.echo(output.text)
    for name in ("json", "parquet", "png"):
        click.echo(f"{name}: {output.files[name]}")
    if not o["no_store"]:
        from neurflow_graph.jobs import store_evaluations

        with open_store(o["data_dir"], o["database"]) as conn:
            for record in store_evaluations(conn, output.records, _bundle_dirs(o)):
                click.echo(f"stored Evaluation {record['id']} -> Run {record['run_id']} ({conn.uri})")
    return output.records


def _bundle_dirs(o: dict) -> list[Path]:
    """The bundle directory of every run the command evaluated."""
    return [Path(b) for b in o["bundles"]] or sorted(p for p in (Path(o["out"]) / "bundles").glob("*") if p.is_dir())


def _subjects(kind: str, o: dict, params: dict) -> tuple[Iterator, str]:
    from neurflow_graph.evaluation.subject import subject_from_bundle, with_overrides

    if bool(o["recipe"]) == bool(o["bundles"]):
        raise click.UsageError("give a RECIPE or --bundle DIR (not both)")
    if o["bundles"]:
        engine = [name for name in ("classes", "k", "n_steps", "max_images", "augment", "layers") if o[name]]
        if engine:
            raise click.UsageError(f"--{engine[0].replace('_', '-')} applies to a RECIPE, not to --bundle")
        return (subject_from_bundle(b, device=o["device"] or "auto") for b in o["bundles"]), ""

    from neurflow_graph.ids import slug
    from neurflow_graph.jobs import subject_from_recipe
    from neurflow_graph.recipes import load_recipe, prepare_model

    classes = class_names(o["classes"])
    recipe = load_recipe(o["recipe"]).with_overrides(classes=tuple(classes), k=o["k"], n_steps=o["n_steps"],
                                                     max_images=o["max_images"], device=o["device"])
    layers = layer_names(o["layers"])
    recipe = with_overrides(recipe, o["augment"], layers)
    if params["taus"] is None and kind != "fidelity":
        params["taus"] = [recipe.params.tau]
    needed = max(params["taus"] or [16])

    def generate():
        prepared = prepare_model(recipe)
        for name in recipe.classes:
            yield subject_from_recipe(prepared, name, needed, Path(o["out"]) / "bundles" / slug(name),
                                      progress=not o["quiet"], log=click.echo)

    return generate(), f"{recipe.name}: {', '.join(recipe.classes)}"


if __name__ == "__main__":  # pragma: no cover
    evaluate()
