"""Ingestion recipes: one TOML file per model/dataset (``ingest/*.toml``), validated, runnable end to end."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurflow_graph.engine.layouts import KINDS as LAYOUT_KINDS
from neurflow_graph.engine.layouts import TOKEN_MODES, parse_layout
from neurflow_graph.engine.params import (
    FAITHFULNESS_LEVELS,
    METHODS,
    PRECISIONS,
    FaithfulnessSettings,
    NeurFlowParams,
)
from neurflow_graph.models.digits import SPLITS

if TYPE_CHECKING:
    from torch import nn

    from neurflow_graph.engine.pipeline import ModelSpec
    from neurflow_graph.models.presets import ModelPreset
from neurflow_graph.errors import ConfigError
from neurflow_graph.records import ClassRef, resolve_class

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

IMAGE_SOURCES = ("digits", "folder", "skimage")
_MODEL_KEYS = {"preset", "weights", "checkpoint", "layers", "layouts", "tokens"}
_IMAGE_KEYS = {"source", "path", "folder", "layout", "names", "augment", "split", "max_images"}
LAYOUTS = ("imagefolder",)
_RUN_KEYS = {"class", "classes"} | {f.name for f in dataclasses.fields(NeurFlowParams)}
_FAITHFULNESS_KEYS = {"level", "sets", "seed"}


# -- the one validation of a recipe's values: every field, its type and range ---------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_from(low: int, high: int | None = None) -> tuple[Callable[[Any], bool], str]:
    above = f" in {low}..{high}" if high is not None else f" >= {low}"
    return (lambda v: _is_int(v) and v >= low and (high is None or v <= high)), f"an integer{above}"


def _one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, str) and v in choices), f"one of {', '.join(choices)}"


def _list_of(item: Callable[[Any], bool], what: str, at_least: int = 1) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return isinstance(v, (list, tuple)) and len(v) >= at_least and all(item(x) for x in v)

    return ok, f"a list of {at_least} or more {what}" if at_least > 1 else f"a non-empty list of {what}"


def _layouts_ok(value: Any) -> bool:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return False
    try:
        for layout in value.values():
            parse_layout(layout)
    except ConfigError:
        return False
    return True


def _text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _class_ref(v: Any) -> bool:
    return _text(v) or (_is_int(v) and v >= 0)


_FRACTION = "a number in (0, 1]"
FIELDS: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("model", "preset"): (_text, "a preset name (a non-empty string)"),
    ("model", "weights"): (_text, "a weights name (e.g. \"DEFAULT\") or a checkpoint path"),
    ("model", "checkpoint"): (_text, "the path of a saved state dict"),
    ("model", "layers"): _list_of(_text, "layer names (model.named_modules() paths), the logit layer first", 2),
    ("model", "layouts"): (_layouts_ok, f"a table of layer = layout, each one of {', '.join(LAYOUT_KINDS)}"),
    ("model", "tokens"): _one_of(*TOKEN_MODES),
    ("images", "source"): _one_of(*IMAGE_SOURCES),
    ("images", "path"): (_text, "the path of an image folder"),
    ("images", "folder"): (lambda v: isinstance(v, str), "a subfolder name (\"\" for the folder itself)"),
    ("images", "layout"): _one_of(*LAYOUTS),
    ("images", "names"): _list_of(_text, "scikit-image sample names (e.g. [\"chelsea\"])"),
    ("images", "augment"): _int_from(0),
    ("images", "split"): _one_of(*SPLITS),
    ("images", "max_images"): _int_from(1),
    ("run", "class"): (_class_ref, "a class name or index"),
    ("run", "classes"): _list_of(_class_ref, "class names or indices"),
    ("run", "k"): _int_from(1),
    ("run", "tau"): _int_from(1),
    ("run", "n_steps"): (lambda v: v == "auto" or (_is_int(v) and v >= 2), "an integer >= 2 or \"auto\""),
    ("run", "method"): _one_of(*METHODS),
    ("run", "precision"): _one_of("auto", *PRECISIONS),
    ("run", "tolerance"): (lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("run", "granularities"): _list_of(lambda v: _is_number(v) and 0 < v <= 1, "numbers in (0, 1]"),
    ("run", "stride_ratio"): (lambda v: _is_number(v) and 0 < v <= 1, _FRACTION),
    ("run", "max_semantic_groups"): _int_from(2),
    ("run", "max_neuron_groups"): _int_from(1),
    ("run", "n_exemplars"): _int_from(1),
    ("run", "seed"): _int_from(0, 2**32 - 1),
    ("run", "batch_size"): _int_from(1),
    ("run", "internal_batch_size"): _int_from(1),
    ("run", "memory_budget_mb"): (lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("run", "device"): (_text, "auto, cpu, cuda or cuda:N"),
    ("faithfulness", "level"): _one_of(*FAITHFULNESS_LEVELS),
    ("faithfulness", "sets"): _int_from(10),
    ("faithfulness", "seed"): _int_from(0, 2**32 - 1),
}
"""Every recipe field: (is the value accepted, what is accepted). The one place a recipe value is checked."""


def check_field(section: str, key: str, value: Any, where: str) -> None:
    """Refuse a value of recipe field ``[section] key`` that ``FIELDS`` does not accept: one ConfigError line
    naming ``where`` (the file, or the command line), the field, the value and what is accepted."""
    ok, accepted = FIELDS[section, key]
    if not ok(value):
        shown = json.dumps(list(value) if isinstance(value, tuple) else value, default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ConfigError(f"{where}: [{section}] {key} = {shown} is not accepted; use {accepted}")


def check_fields(tables: dict[str, dict], where: str) -> None:
    """``check_field`` for every key of the recipe's tables: [model], [images], [run] and [faithfulness]."""
    for section, table in tables.items():
        for key, value in table.items():
            check_field(section, key, value, where)


@dataclass(frozen=True)
class ImageSource:
    """Where a recipe's class images come from."""

    source: str
    path: str | None = None  # folder: the image folder
    folder: str | None = None  # folder: subfolder of the class; default the class name, "" for a flat folder
    layout: str | None = None  # folder: "imagefolder": one subfolder per class, sorted to class indices
    names: tuple[str, ...] = ()  # skimage: sample image names
    augment: int = 0  # skimage: augmented copies per image
    split: str = "test"  # digits: train / test / all
    max_images: int | None = None  # cap on the images kept after filtering by prediction


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: model preset, class(es), image source and NeurFlow parameters."""

    name: str
    preset: str
    classes: tuple[str, ...]
    images: ImageSource
    params: NeurFlowParams
    weights: str | None = None
    checkpoint: str | None = None
    layers: tuple[str, ...] | None = None
    path: str | None = None
    layouts: tuple[tuple[str, str], ...] = ()  # [model] layouts: layer -> units/channels_first/channels_last/tokens
    tokens: str = "patches"  # [model] tokens: patches, all or cls
    faithfulness: FaithfulnessSettings = FaithfulnessSettings()  # [faithfulness]: measured at ingest, not in the run id

    def with_overrides(self, **overrides) -> Recipe:
        """A copy with CLI overrides applied (``classes``, ``images``, ``max_images`` or any parameter)."""
        overrides = {k: v for k, v in overrides.items() if v is not None and v != ()}
        for key, value in overrides.items():
            section, field = _OVERRIDE_FIELDS.get(key, ("run", key))
            if (section, field) in FIELDS:  # paths may come as Path objects, classes as a tuple
                shown = list(value) if key == "classes" else os.fspath(value) if isinstance(value, os.PathLike) \
                    else value
                check_field(section, field, shown, f"--{key.replace('_', '-')}")
        top, images, params = {}, {}, {}
        for key, value in overrides.items():
            if key == "faithfulness":
                top["faithfulness"] = dataclasses.replace(self.faithfulness, level=str(value))
            elif key == "classes":
                top["classes"] = tuple(str(c) for c in value)
            elif key in ("weights", "checkpoint"):
                top[key] = str(value)
            elif key == "images":
                images["path"] = str(value)
                if self.images.source != "folder":
                    images.update(source="folder", folder=None)
            elif key == "max_images":
                images["max_images"] = value
            else:
                params[key] = value
        return dataclasses.replace(
            self, **top, images=dataclasses.replace(self.images, **images),
            params=NeurFlowParams(**{**dataclasses.asdict(self.params), **params}),
        )


_OVERRIDE_FIELDS = {"classes": ("run", "classes"), "weights": ("model", "weights"),
                    "checkpoint": ("model", "checkpoint"), "images": ("images", "path"),
                    "max_images": ("images", "max_images"), "faithfulness": ("faithfulness", "level")}
"""The recipe field each ``with_overrides`` key replaces (any other key is the ``[run]`` field of its name)."""


def _check_keys(table: dict, allowed: set[str], where: str, path: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown key {key!r} in [{where}]{hint}; allowed: {', '.join(sorted(allowed))}")


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a recipe file; every problem is a one-line ConfigError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found; the shipped recipes are in ingest/*.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    _check_keys(data, {"model", "images", "run", "faithfulness"}, "top level", str(path))
    for section in ("model", "images", "run", "faithfulness"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}] followed by its keys)")
    model, images, run, faithfulness = (data.get(k, {}) for k in ("model", "images", "run", "faithfulness"))
    _check_keys(model, _MODEL_KEYS, "model", str(path))
    _check_keys(images, _IMAGE_KEYS, "images", str(path))
    _check_keys(run, _RUN_KEYS, "run", str(path))
    _check_keys(faithfulness, _FAITHFULNESS_KEYS, "faithfulness", str(path))
    check_fields({"model": model, "images": images, "run": run, "faithfulness": faithfulness}, str(path))
    if "preset" not in model:
        raise ConfigError(f"{path}: [model] needs a preset, e.g. preset = \"digits\"")
    layouts = model.get("layouts", {})
    source = images.get("source")
    if source not in IMAGE_SOURCES:
        raise ConfigError(f"{path}: [images] source must be one of {', '.join(IMAGE_SOURCES)}, got {source!r}")
    if source == "folder" and not images.get("path"):
        raise ConfigError(f"{path}: [images] source = \"folder\" needs path = \"/path/to/images\"")
    if images.get("layout") not in (None, *LAYOUTS):
        raise ConfigError(f"{path}: [images] layout must be one of {', '.join(LAYOUTS)}, got {images['layout']!r}")
    if images.get("layout") and "folder" in images:
        raise ConfigError(f"{path}: [images] layout = \"imagefolder\" picks each class's folder; drop folder")
    classes = run.get("classes", [run["class"]] if "class" in run else [])
    if not classes:
        raise ConfigError(f"{path}: [run] needs class = \"name or index\" (or classes = [...])")
    if "class" in run and "classes" in run:
        raise ConfigError(f"{path}: [run] has both class and classes; keep one")
    try:
        faithful = FaithfulnessSettings(**faithfulness)
    except ConfigError as exc:
        raise ConfigError(f"{path}: [faithfulness] {exc}") from None
    params = {k: v for k, v in run.items() if k not in ("class", "classes")}
    try:
        parsed = NeurFlowParams(**params)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return Recipe(
        name=path.stem, preset=model["preset"], classes=tuple(str(c) for c in classes),
        images=ImageSource(
            source=source, path=images.get("path"), folder=images.get("folder"), layout=images.get("layout"),
            names=tuple(images.get("names", ())), augment=images.get("augment", 0),
            split=images.get("split", "test"), max_images=images.get("max_images"),
        ),
        params=parsed, weights=model.get("weights"), checkpoint=model.get("checkpoint"),
        layers=tuple(model["layers"]) if "layers" in model else None, path=str(path),
        layouts=tuple(sorted(layouts.items())), tokens=model.get("tokens", "patches"), faithfulness=faithful,
    )


def class_index_of(name: str, class_names: Sequence[str]) -> int:
    """A class index from an index or a class name (exact, then case-insensitive): `records.resolve_class`."""
    classes = [ClassRef(str(i), "", i, c) for i, c in enumerate(class_names)]
    return resolve_class(name, classes, every_class=True).index


@dataclass(frozen=True)
class PreparedModel:
    """A recipe's model built once, reused by every class of the recipe."""

    recipe: Recipe
    preset: ModelPreset
    model: nn.Module
    class_names: list[str]
    weights_sha256: str | None = None  # pipeline.weights_sha256(model), computed once here
    tau_caps: dict[str, int] = dataclasses.field(default_factory=dict)
    """Layers narrower than the recipe's tau and the tau each gets (``pipeline.tau_caps``), known before any image."""

    def model_spec(self) -> ModelSpec:
        """The ModelSpec of every run of this recipe (model, layers, normalisation, provenance, weights digest)."""
        recipe = self.recipe
        return self.preset.model_spec(self.model, name=recipe.preset, layers=recipe.layers or None,
                                      layouts=dict(recipe.layouts), tokens=recipe.tokens, weights=recipe.weights,
                                      checkpoint=recipe.checkpoint, weights_sha256=self.weights_sha256)

    def tau_note(self) -> str | None:
        """The warning a capped tau prints (``None`` when no layer is narrower than tau)."""
        return describe_tau_caps(self.recipe.params.tau, self.tau_caps)


def describe_tau_caps(tau: int, caps: dict[str, int]) -> str | None:
    """One line saying which layers got a smaller tau than asked, and why (``None`` when none did)."""
    if not caps:
        return None
    layers = ", ".join(f"{layer} {cap}" for layer, cap in caps.items())
    return (f"warning: tau={tau} is at or above the width of {len(caps)} layer(s); capped to width - 1 there "
            f"({layers}), as recorded in run.json tau_caps")


def prepare_model(recipe: Recipe) -> PreparedModel:
    """Build the recipe's model (and train the digits model on first use), digest its weights once, and check the
    recipe's layers and parameters against the model before any image is read."""
    from neurflow_graph.engine.pipeline import weights_sha256
    from neurflow_graph.models.presets import get_preset

    preset = get_preset(recipe.preset)
    model = preset.build(weights=recipe.weights, checkpoint=recipe.checkpoint)
    prepared = PreparedModel(recipe, preset, model, preset.class_names(), weights_sha256(model))
    return dataclasses.replace(prepared, tau_caps=check_against_model(prepared))


def check_against_model(prepared: PreparedModel) -> dict[str, int]:
    """Check the recipe against its model with one probe input, before any image is read: the layers (real, in
    forward order, of a known layout), k against the patches ``max_images`` images give, and tau against each
    lower layer's width. Returns the tau caps (``pipeline.tau_caps``); a problem is one ConfigError line."""
    import torch

    from neurflow_graph.engine.layers import layer_widths, validate_layers
    from neurflow_graph.engine.patches import make_patches
    from neurflow_graph.engine.pipeline import tau_caps

    recipe, preset = prepared.recipe, prepared.preset
    spec = prepared.model_spec()
    side = preset.input_size
    probe = torch.zeros(2, preset.in_channels, side, side)
    example = spec.normalize(probe)
    params = recipe.params
    model = prepared.model.eval()
    layers = validate_layers(model, spec.layers, example, spec.layouts, spec.tokens)
    widths = layer_widths(model, layers, example, spec.layouts, spec.tokens)
    if recipe.images.max_images is not None:
        per_image = len(make_patches(probe[:1], params.granularities, params.stride_ratio))
        most = per_image * recipe.images.max_images
        if params.k > most:
            raise ConfigError(
                f"k={params.k} is larger than the {most} patches that max_images={recipe.images.max_images} images "
                f"give ({per_image} each); lower k or raise max_images"
            )
    return tau_caps(params.tau, widths, layers[1:])
