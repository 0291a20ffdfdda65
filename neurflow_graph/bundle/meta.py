"""A bundle's run.json as one typed record, checked field by field when a bundle is read (docs/artifacts.md).

Every field that the rest of the package reads is checked here, with its type, so a bad run.json is
refused in one line naming the file and the field before anything uses it (or writes it to a graph).
Fields this release does not read are kept in the dict and not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neurflow_graph import ids
from neurflow_graph.engine.params import NeurFlowParams, run_identity
from neurflow_graph.errors import ArtifactError, ConfigError

if TYPE_CHECKING:
    from neurflow_graph.engine.pipeline import Bundle

_TYPES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                           dict: "an object", list: "a list"}


def meta_of(bundle: Bundle) -> RunMeta:
    """The checked, typed run.json of an in-memory bundle."""
    return RunMeta.parse(bundle.run_json, f"run {bundle.run_json.get('run_id')!r}")


@dataclass(frozen=True)
class ModelMeta:
    """run.json ``model``: the model's name (node ids start with it), class count and how it was built."""

    name: str
    num_classes: int
    preset: str | None = None
    weights: str | None = None
    checkpoint: str | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Every field of run.json ``model`` but name and class count: how the model was built (the run id hashes it)."""


@dataclass(frozen=True)
class ImagesMeta:
    """run.json ``images``: how many class images the run kept, their SHA-256, and where they came from."""

    kept: int
    sha256: tuple[str, ...]
    sources: tuple[str, ...] = ()
    dropped: int | None = None
    recipe: str | None = None
    source: dict | None = None  # image_sources.image_source_record: enough to load the images again


@dataclass(frozen=True)
class LayerStats:
    """run.json ``layer_stats[layer]``: the integrated-gradients pass whose targets are in that layer."""

    lower: str
    targets: int
    n_steps: int
    completeness_error: float
    seconds: float


@dataclass(frozen=True)
class RunMeta:
    """A checked run.json. ``params`` are the run's NeurFlowParams; ``input_size`` the model's input side."""

    run_id: str
    created_at: str
    model: ModelMeta
    weights_sha256: str
    class_index: int
    class_name: str
    layers: tuple[str, ...]
    params: NeurFlowParams
    input_size: int
    images: ImagesMeta
    layer_stats: dict[str, LayerStats]
    stage_seconds: dict[str, float]
    versions: dict[str, str]
    request_key: str | None = None  # ids.request_key of the run's request (recipe runs); None in older bundles
    tau_caps: dict[str, int] = dataclasses.field(default_factory=dict)  # pipeline.tau_caps; absent when none
    faithfulness: FaithfulnessMeta | None = None  # run.json ``faithfulness``: None when it was not measured
    record: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """The run.json this was parsed from, every field (those this release does not read too): what the store keeps."""

    @property
    def recorded_params(self) -> dict[str, Any]:
        """The parameters as run.json records them, for display: ``params`` plus ``input_size``, JSON types."""
        return dict(self.record.get("params", {}))

    @classmethod
    def parse(cls, run: Any, source: str = "run.json") -> RunMeta:
        """Check ``run`` (a parsed run.json) and return it typed; ArtifactError naming ``source`` and the field."""
        f = _Fields(run, source)
        layers = tuple(f.items("layers", str))
        if len(layers) < 2:
            f.fail("layers", "must list at least 2 layers (the logit layer first)")
        model = ModelMeta(name=f.get("model.name", str), num_classes=f.get("model.num_classes", int),
                          preset=f.get("model.preset", str, None), weights=f.get("model.weights", str, None),
                          checkpoint=f.get("model.checkpoint", str, None),
                          provenance={k: v for k, v in run["model"].items() if k not in _NOT_PROVENANCE})
        kept, sha256 = f.get("images.kept", int), tuple(f.items("images.sha256", str))
        if len(sha256) != kept:
            f.fail("images.sha256", f"must have one entry per kept image ({kept}), has {len(sha256)}")
        sources = tuple(f.items("images.sources", str, ()))
        if sources and len(sources) != kept:
            f.fail("images.sources", f"must have one entry per kept image ({kept}), has {len(sources)}")
        images = ImagesMeta(kept=kept, sha256=sha256, sources=sources, dropped=f.get("images.dropped", int, None),
                            recipe=f.get("images.recipe", str, None), source=f.get("images.source", dict, None))
        names = [fl.name for fl in dataclasses.fields(NeurFlowParams)]
        given = f.get("params", dict)
        for name in names:
            if name not in given:
                f.fail(f"params.{name}", "is missing")
        try:
            params = NeurFlowParams(**{name: given[name] for name in names})
        except (ConfigError, TypeError) as exc:
            raise ArtifactError(f"{source}: field 'params' is not valid ({exc}); re-run the bundle") from None
        stats = {}
        for layer, below in zip(layers[:-1], layers[1:], strict=True):
            key = ("layer_stats", layer)  # a path of parts: layer names hold dots (layer4.2)
            if f.get((*key, "lower"), str) != below:
                f.fail((*key, "lower"), f"must be {below!r}, the layer listed below {layer!r}")
            stats[layer] = LayerStats(lower=below, targets=f.get((*key, "targets"), int),
                                      n_steps=f.get((*key, "n_steps"), int),
                                      completeness_error=f.get((*key, "completeness_error"), float),
                                      seconds=f.get((*key, "seconds"), float))
        return cls(
            run_id=f.get("run_id", str), created_at=f.get("created_at", str), model=model,
            weights_sha256=f.get("weights_sha256", str), class_index=f.get("class.index", int),
            class_name=f.get("class.name", str), layers=layers, params=params,
            input_size=f.get("params.input_size", int), images=images, layer_stats=stats,
            stage_seconds=f.mapping("stage_seconds", float), versions=f.mapping("versions", str),
            request_key=f.get("request_key", str, None), faithfulness=faithfulness_meta(f),
            tau_caps=f.mapping("tau_caps", int) if "tau_caps" in run else {}, record=run,
        )


_NOT_PROVENANCE = ("name", "num_classes")  # run.json ``model`` fields that are not the model's identity


def recomputed_run_id(run: dict) -> str:
    """The run id that a checked run.json's content hashes to (``params.run_identity``, ``ids.run_id``): its model
    and provenance, weights digest, layers, class, images and parameters, exactly as the run that wrote it did."""
    model = run["model"]
    provenance = {k: v for k, v in model.items() if k not in _NOT_PROVENANCE}
    identity = run_identity(model["name"], provenance, run["weights_sha256"], run["layers"], run["class"]["index"],
                            run["images"]["sha256"], run["params"])
    return ids.run_id(model["name"], run["class"]["index"], identity)


def check_run_id(run: dict, source: str) -> None:
    """Refuse a run.json (already checked by ``RunMeta.parse``) whose ``run_id`` is not what its content hashes to:
    a bundle is data from disk, and a copied or edited run id would file its content under another run."""
    expected = recomputed_run_id(run)
    if run["run_id"] != expected:
        raise ArtifactError(
            f"{source}: run_id {run['run_id']!r} is not what its content hashes to ({expected!r}); the bundle was "
            "edited or copied from another run: re-run it"
        )


FAITHFULNESS_LEVELS = ("off", "layers", "groups")
"""``off``: not measured; ``layers``: per layer of the circuit; ``groups``: also per neuron group (as ``debug``)."""
DEFAULT_LEVEL = "layers"
DEFAULT_SETS = 10
DEFAULT_SEED = 0


@dataclass(frozen=True)
class FaithfulnessSettings:
    """What to measure: ``level`` (FAITHFULNESS_LEVELS), ``sets`` random sets per layer (>= 10), their ``seed``."""

    level: str = DEFAULT_LEVEL
    sets: int = DEFAULT_SETS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.level not in FAITHFULNESS_LEVELS:
            raise ConfigError(f"faithfulness must be one of {', '.join(FAITHFULNESS_LEVELS)}, got {self.level!r}")
        if isinstance(self.sets, bool) or not isinstance(self.sets, int) or self.sets < 10:
            raise ConfigError(f"faithfulness sets must be an integer >= 10 (random sets per layer), got {self.sets!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"faithfulness seed must be an integer >= 0, got {self.seed!r}")

    @property
    def on(self) -> bool:
        return self.level != "off"




FAITHFULNESS_LAYER_FIELDS: dict[str, type] = {
    "layer": str, "layer_index": int, "n_core": int, "width": int, "n_images": int, "base_logit": float,
    "base_prob": float, "logit_drop": float, "random_logit_drop_mean": float, "random_logit_drop_std": float,
    "logit_z": float, "prob_drop": float, "random_prob_drop_mean": float, "random_prob_drop_std": float,
    "prob_z": float, "kept_share": float, "random_kept_share_mean": float, "random_kept_share_std": float,
    "kept_z": float, "mask_accuracy": float, "retain_accuracy": float, "beats_random": bool,
}
"""The per-layer faithfulness figures (evaluation/faithfulness.py) and their types, in the order readers give them."""
FAITHFULNESS_GROUP_FIELDS: dict[str, type] = {
    "group_id": str, "layer": str, "layer_index": int, "n_neurons": int, "n_images": int, "logit_drop": float,
    "prob_drop": float, "random_logit_drop_mean": float, "random_logit_drop_std": float,
    "random_prob_drop_mean": float, "random_prob_drop_std": float, "logit_z": float, "share_random_worse": float,
}
"""The per-group figures (``--faithfulness groups``): what ``debug`` computes for a group on the run's images."""


@dataclass(frozen=True)
class FaithfulnessMeta:
    """run.json ``faithfulness``: settings (level, random sets, seed), summary, per-layer and per-group rows."""

    level: str
    sets: int
    seed: int
    z_beats: float
    verdict: str
    weakest_layer: str
    weakest_z: float
    beats_random_everywhere: bool
    layers: tuple[dict[str, Any], ...]
    groups: tuple[dict[str, Any], ...] = ()


def faithfulness_meta(f: _Fields) -> FaithfulnessMeta | None:
    """The checked ``faithfulness`` section of a run.json, or None when the run has none."""
    if f.get("faithfulness", dict, None) is None:
        return None
    rows = {}
    for part, fields in (("layers", FAITHFULNESS_LAYER_FIELDS), ("groups", FAITHFULNESS_GROUP_FIELDS)):
        items = f.get(("faithfulness", part), list, [] if part == "groups" else _MISSING)
        for i, item in enumerate(items):
            row = _Fields(item, f"{f.source} (faithfulness.{part}[{i}])")
            for name, kind in fields.items():
                row.get(name, kind)
        rows[part] = tuple(items)
    if not rows["layers"]:
        f.fail("faithfulness.layers", "must list one entry per layer below the logit")
    key = "faithfulness"
    return FaithfulnessMeta(
        level=f.get((key, "level"), str), sets=f.get((key, "sets"), int), seed=f.get((key, "seed"), int),
        z_beats=f.get((key, "z_beats"), float), verdict=f.get((key, "verdict"), str),
        weakest_layer=f.get((key, "weakest_layer"), str), weakest_z=f.get((key, "weakest_z"), float),
        beats_random_everywhere=f.get((key, "beats_random_everywhere"), bool), layers=rows["layers"],
        groups=rows["groups"],
    )


_MISSING = object()


class _Fields:
    """Typed reads of dotted paths in a parsed JSON object, each failure one ArtifactError line."""

    def __init__(self, data: Any, source: str):
        self.data, self.source = data, source
        if not isinstance(data, dict):
            raise ArtifactError(f"{source}: expected a JSON object; re-run the bundle")

    def fail(self, path: str | tuple[str, ...], problem: str) -> None:
        path = ".".join(path) if isinstance(path, tuple) else path
        raise ArtifactError(f"{self.source}: field {path!r} {problem}; re-run the bundle")

    def _value(self, path: str | tuple[str, ...]) -> Any:
        value = self.data
        parts = path if isinstance(path, tuple) else path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(value, dict):
                self.fail(".".join(parts[:i]), "must be an object")
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        return value

    def get(self, path: str | tuple[str, ...], kind: type, default: Any = _MISSING) -> Any:
        """The value at ``path``, of type ``kind`` (an int counts as a float); ``default`` when absent or null."""
        value = self._value(path)
        if value is _MISSING or (value is None and default is not _MISSING):
            if default is _MISSING:
                self.fail(path, "is missing")
            return default
        return self._check(path, value, kind)

    def items(self, path: str, kind: type, default: Any = _MISSING) -> list:
        """The list at ``path``, each item of type ``kind``."""
        value = self.get(path, list, default)
        return [self._check(f"{path}[{i}]", item, kind) for i, item in enumerate(value)]

    def mapping(self, path: str, kind: type) -> dict:
        """The object at ``path``, each value of type ``kind``."""
        return {key: self._check(f"{path}.{key}", item, kind) for key, item in self.get(path, dict).items()}

    def _check(self, path: str | tuple[str, ...], value: Any, kind: type) -> Any:
        ok: Callable[[Any], bool] = {
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        }.get(kind, lambda v: isinstance(v, kind))
        if not ok(value):
            self.fail(path, f"must be {_TYPES[kind]}, got {type(value).__name__} {value!r:.40}")
        return float(value) if kind is float else value
