"""Debug one class's stored circuit end to end (what `neurflow-graph debug` does, callable from a notebook).

Read the run and one layer's groups from the store, check the recipe's model is the run's, pick the images
(a folder; by default the run's own, else the recipe's), score and mask every group (`debug_images`), and
store one Intervention node per group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neurflow_graph.debugging.core import DebugResult, GroupDebug, debug_images
from neurflow_graph.debugging.faithfulness import known_random_figures
from neurflow_graph.debugging.sources import DebugImages, folder_images, recipe_images, run_images
from neurflow_graph.debugging.store import store_interventions
from neurflow_graph.errors import QueryError
from neurflow_graph.query.fetch import fetch_class, fetch_exemplars, fetch_layer_groups, fetch_run_info
from neurflow_graph.recipes import Recipe, load_recipe, prepare_model
from neurflow_graph.records import ClassRef, Group, Run
from neurflow_graph.store.connection import Connection


@dataclass(frozen=True)
class ClassDebug:
    """What `debug_class` debugged (class, run, layer, groups, images) and found (`result`), and what it stored."""

    info: ClassRef
    run: Run
    layer: str
    groups: tuple[Group, ...]
    exemplars: dict[str, list[Path | None]]
    images: DebugImages
    result: DebugResult
    intervention_ids: dict[str, str]
    """Intervention node id by group id (empty when nothing was stored)."""


def debug_class(
    conn: Connection,
    class_ref: str,
    recipe: Recipe | str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    layer: str | None = None,
    run_id: str | None = None,
    seeds: int = 5,
    seed: int = 0,
    top: int = 8,
    max_images: int | None = 200,
    device: str | None = None,
    store: bool = True,
    progress: bool = False,
    on_start: Callable[[str], None] | None = None,
) -> ClassDebug:
    """Image debugging (paper 5.1) of one layer of CLASS's stored circuit; see the module docstring.

    `layer` defaults to the layer under the logit; `run_id` to the class's latest complete run; `device` to the
    recipe's. `on_start` receives lines saying what is debugged (and whether the random sets' figures come
    from the run's stored faithfulness), before the masking starts.
    """
    from neurflow_graph.engine.pipeline import resolve_device

    spec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    info = fetch_class(conn, class_ref, model=spec.preset)  # what to debug, read before any heavy work
    run = fetch_run_info(conn, run_id or str(info.latest_run))
    if run.class_id != info.class_id:
        raise QueryError(f"run {run.run_id} is of class {run.class_id}, not {info.class_id}")
    layer = layer or (run.layers[1] if len(run.layers) > 1 else "")
    groups = fetch_layer_groups(conn, info.class_id, layer, run_id=run.run_id)
    exemplars = {g.group_id: [e.path for e in fetch_exemplars(conn, g.id)] for g in groups}
    prepared = prepare_model(spec)
    meta = run.meta
    recorded = meta.weights_sha256 if meta is not None else None
    if recorded and recorded != prepared.weights_sha256:
        named = spec.name if isinstance(recipe, Recipe) else recipe
        raise QueryError(f"recipe {named}'s model weights (sha256 {prepared.weights_sha256[:12]}) are not those "
                         f"of run {run.run_id} ({recorded[:12]}); pass the recipe and weights the run was computed "
                         "with")
    target = resolve_device(device or spec.params.device)
    if images:
        chosen = folder_images(images, prepared.preset.input_size, prepared.preset.in_channels, max_images)
    else:
        chosen = run_images(run, prepared, max_images) or recipe_images(prepared, info.index, target, max_images)
    if on_start is not None:
        on_start(f"class {info.class_id}, run {run.run_id}, layer {layer}: {len(groups)} groups; "
                 f"{chosen.description}")
    known = known_random_figures(meta, chosen.images.sha256, seeds, seed)
    if known and on_start is not None:
        on_start(f"random sets of {len(known)} group(s) read from the run's stored faithfulness (measured at "
                 "ingest with these seeds on these images): only the groups themselves are masked")
    result = debug_images(prepared.model, chosen.images.images, groups, info.index,
                          normalize=prepared.preset.normalize, seeds=seeds, seed=seed, top=top, device=target,
                          sources=chosen.images.sources, sha256=chosen.images.sha256, labels=chosen.labels,
                          run_id=run.run_id, progress=progress, known=known)
    stored = store_interventions(conn, result, info.class_id, chosen.description) if store else []
    return ClassDebug(info=info, run=run, layer=layer, groups=tuple(groups), exemplars=exemplars, images=chosen,
                      result=result, intervention_ids={g.group.group_id: i for g, i in zip(result.groups, stored,
                                                                                           strict=False)})


def describe_group(g: GroupDebug) -> str:
    """One line per masked group: its size, mean metric, and its drops against the random sets'."""
    return (f"{g.group.group_id:<14} {len(g.group.channels):>3} neurons  mean M {g.metric.mean():.3f}  "
            f"Δprob {g.mean_prob_drop:+.4f} (random {g.random_prob_drop.mean():+.4f} ± "
            f"{g.random_prob_drop.std():.4f})  Δlogit {g.mean_logit_drop:+.3f} "
            f"(random {g.random_logit_drop.mean():+.3f})  flipped {g.flipped}")
