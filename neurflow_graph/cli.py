"""The ``neurflow-graph`` command line: parses options and calls the library, nothing more."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import click

from .errors import NeurflowGraphError


def _errors_as_click(fn):
    """Turn the package's errors into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NeurflowGraphError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _steps(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected an integer >= 2 or 'auto', got {value!r}") from None


def run_options(fn):
    """Options that override a recipe's fields, shared by ``run`` and ``ingest``."""
    options = [
        click.option("--class", "classes", multiple=True, help="Class name or index (repeat for several)."),
        click.option("--images", type=click.Path(file_okay=False), help="Image folder (replaces the recipe's source)."),
        click.option("--max-images", type=int, help="Keep at most this many correctly predicted images."),
        click.option("--weights", help="Torchvision weights name or a local checkpoint path."),
        click.option("--k", type=int, help="Top patches per neuron (concept size)."),
        click.option("--tau", type=int, help="Core neurons kept per target."),
        click.option("--steps", "n_steps", type=str, help="Integrated-gradients steps, or 'auto' with --tolerance."),
        click.option("--tolerance", type=float, help="Completeness error to reach with --steps auto."),
        click.option("--method", type=click.Choice(
            ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]),
            help="Quadrature rule for integrated gradients."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                     help="auto: bf16 autocast on CUDA, fp32 on CPU."),
        click.option("--device", help="auto, cpu, cuda or cuda:N."),
        click.option("--seed", type=int, help="Random seed."),
        click.option("--batch-size", "internal_batch_size", type=int,
                     help="(patch, step) rows per integrated-gradients pass; bounds memory."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def load_recipe_with(recipe_path: str, overrides: dict):
    """The recipe at ``recipe_path`` with command-line overrides applied."""
    from .recipes import load_recipe

    if overrides.get("n_steps") is not None:
        overrides["n_steps"] = _steps(overrides["n_steps"])
    return load_recipe(recipe_path).with_overrides(**overrides)


def summarize(bundle) -> str:
    """Neurons, semantic groups, neuron groups and edges per layer, and seconds per stage."""
    circuit, groups = bundle.circuit, bundle.groups
    group_count = Counter(g.layer for g in groups.groups)
    edge_count = Counter(e.child.rsplit("/", 1)[0] for e in groups.edges)
    stats = bundle.run["layer_stats"]
    lines = [f"run {bundle.run['run_id']}: class {bundle.run['class']['index']} ({bundle.run['class']['name']}), "
             f"{bundle.run['images']['kept']} images, {len(bundle.patches)} patches"]
    header = f"  {'layer':<14}{'neurons':>8}{'sem.groups':>11}{'groups':>7}{'hyperedges':>11}{'edges up':>12}" \
             f"{'IG steps':>9}{'complet.err':>12}{'seconds':>9}"
    lines.append(header)
    for li, layer in enumerate(circuit.layers):
        n = len(circuit.neurons(li))
        if li < len(circuit.transitions):
            tr = circuit.transitions[li]
            s = stats[layer]
            extra = (f"{int(tr.n_semantic_groups.sum()):>11}{group_count[layer]:>7}{len(tr.edge_child):>11}"
                     f"{edge_count[layer]:>12}{s['n_steps']:>9}{s['completeness_error']:>12.2e}{s['seconds']:>9.1f}")
        else:
            extra = f"{'-':>11}{'-':>7}{'-':>11}{'-':>12}{'':>9}{'':>12}{'':>9}   (leaves)"
        lines.append(f"  {layer:<14}{n:>8}{extra}")
    lines.append("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in bundle.run["stage_seconds"].items()))
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurflow-graph")
def main() -> None:
    """NeurFlow circuits of vision models, computed and stored in a graph database."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Bundle directory to write (one subdirectory per class when several classes run).")
@run_options
@_errors_as_click
def run(recipe: str, out: str, quiet: bool, **overrides) -> None:
    """Compute the NeurFlow circuit of RECIPE's class(es) and write a bundle to --out."""
    from .recipes import prepare_model, run_recipe_class

    spec = load_recipe_with(recipe, overrides)
    prepared = prepare_model(spec)
    for name in spec.classes:
        target = Path(out) if len(spec.classes) == 1 else Path(out) / _slug(name)
        bundle = run_recipe_class(prepared, name, target, progress=not quiet, report=click.echo)
        click.echo(summarize(bundle))
        click.echo(f"bundle written to {target}")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


if __name__ == "__main__":  # pragma: no cover
    main()
