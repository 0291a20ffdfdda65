"""The run record: run.json as one typed record (`RunMeta`), built by the engine, checked field by field when read,
and turned into run.json's text and back here and only here (docs/artifacts.md). Torch-free: the store, the query
layer and the command line read it without the engine's heavy imports.

Every field that the rest of the package reads is checked here, with its type, so a bad run.json is refused in
one line naming the file and the field before anything uses it (or writes it to a graph). Fields this release
does not read are kept in the record and not checked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from neurflow_graph import ids
from neurflow_graph.engine.params import NeurFlowParams, run_identity
from neurflow_graph.errors import ArtifactError, ConfigError

BUNDLE_FORMAT = 2  # 2: run.json records weights_sha256, which the run id hashes
"""The format of a bundle (run.json and the tables it describes), recorded as run.json ``bundle_format``."""

_TYPES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                           dict: "an object", list: "a list"}


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
    """A checked run.json. ``params`` are the run's NeurFlowParams; ``input_size`` the model's input side.

    Made only by ``parse`` (``new``, ``from_json`` and the ``with_*`` methods go through it), so the typed fields
    and ``record``, the run.json they were read from, always agree: change a run with the methods, never with
    ``dataclasses.replace``.
    """

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
    complete: bool = False  # true once every stage of the run finished (a bundle is written only then)
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
            tau_caps=f.mapping("tau_caps", int) if "tau_caps" in run else {},
            complete=f.get("complete", bool, False), record=run,
        )

    @classmethod
    def new(cls, *, model: Mapping[str, Any], weights_sha256: str, class_index: int, class_name: str,
            layers: Sequence[str], params: Mapping[str, Any], images: Mapping[str, Any],
            layer_stats: Mapping[str, LayerStats], stage_seconds: Mapping[str, float], versions: Mapping[str, str],
            tau_caps: Mapping[str, int] | None = None) -> RunMeta:
        """The record of a run just computed, laid out as run.json keeps it, its run id the hash of its content.

        ``model`` is the run id's model (name, class count, provenance); ``params`` the parameters as run.json
        records them (``NeurFlow.recorded_params``); ``images`` holds ``kept``, ``sha256`` and where they came from.
        """
        run = {
            "run_id": "",  # first in the record; set below from the content
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": True,
            "model": dict(model),
            "weights_sha256": weights_sha256,
            "class": {"index": int(class_index), "name": class_name},
            "layers": list(layers),
            "params": dict(params),
            **({"tau_caps": dict(tau_caps)} if tau_caps else {}),  # only when capped: uncapped runs stay as they were
            "images": dict(images),
            "layer_stats": {layer: dataclasses.asdict(stats) for layer, stats in layer_stats.items()},
            "stage_seconds": dict(stage_seconds),
            "versions": dict(versions),
        }
        run["run_id"] = recomputed_run_id(run)
        return cls.parse(run, f"run {run['run_id']!r}")

    def _with(self, run: dict) -> RunMeta:
        return RunMeta.parse(run, f"run {self.run_id!r}")

    def with_request_key(self, request_key: str) -> RunMeta:
        """The record with the key of the request that made it (``ids.request_key``), right after the run id."""
        return self._with({"run_id": self.run_id, "request_key": request_key, **self.record})

    def with_faithfulness(self, section: Mapping[str, Any], seconds: float) -> RunMeta:
        """The record with the faithfulness stage's figures (``FaithfulnessMeta``'s fields) and its ``seconds``
        as ``stage_seconds.faithfulness``."""
        stages = {**self.record["stage_seconds"], "faithfulness": seconds}
        return self._with({**self.record, "stage_seconds": stages, "faithfulness": dict(section)})

    def without_faithfulness(self) -> RunMeta:
        """The record as the engine left it, before the faithfulness stage (to measure it again)."""
        stages = {k: v for k, v in self.record["stage_seconds"].items() if k != "faithfulness"}
        run = {k: v for k, v in self.record.items() if k not in ("faithfulness", "bundle_format")}
        return self._with({**run, "stage_seconds": stages})

    def to_json(self) -> str:
        """run.json's text: every field of the record, then ``bundle_format``."""
        return json.dumps({**self.record, "bundle_format": BUNDLE_FORMAT}, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "run.json") -> RunMeta:
        """The one reader of run.json's text: check it completely (format version, completion, every field the
        package reads, the run id against its content); anything wrong is one ArtifactError naming ``source``."""
        try:
            run = json.loads(text)
        except ValueError as exc:
            raise ArtifactError(f"{source} is not readable JSON ({exc}); re-run the bundle") from None
        if not isinstance(run, dict):
            raise ArtifactError(f"{source}: expected a JSON object; re-run the bundle")
        if run.get("bundle_format") != BUNDLE_FORMAT:
            raise ArtifactError(
                f"{source} has bundle_format {run.get('bundle_format')!r}, this release reads {BUNDLE_FORMAT}; "
                "re-run it with this release"
            )
        if run.get("complete") is not True:
            raise ArtifactError(f"{source}: the run did not complete (complete is not true); re-run it")
        meta = cls.parse(run, source)
        check_run_id(run, source)
        return meta


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
