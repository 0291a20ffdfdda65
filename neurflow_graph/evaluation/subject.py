"""What an evaluation runs on: one run's model, class images, probe patches and circuit, from a bundle or a recipe."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from neurflow_graph.bundle.files import read_bundle
from neurflow_graph.engine.circuit import Circuit
from neurflow_graph.engine.devices import on_device
from neurflow_graph.engine.layers import capture
from neurflow_graph.engine.layouts import Layout
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.patches import Patches
from neurflow_graph.engine.pipeline import Bundle, ModelSpec, resolve_device

from ..errors import ArtifactError, ConfigError
from .knockout import Knockout


@dataclass(frozen=True)
class Subject:
    """One run under evaluation. ``patches.images`` (N×C×S×S in [0, 1]) are the class images it was built from.

    Knockout helpers (the lower layer's feature maps of every patch) are built on first use and cached.
    """

    spec: ModelSpec
    meta: RunMeta
    patches: Patches
    circuit: Circuit
    device: torch.device = torch.device("cpu")
    batch_size: int = 64
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        return self.meta.run_id

    @property
    def class_index(self) -> int:
        return int(self.circuit.class_index)

    @property
    def class_name(self) -> str:
        return self.meta.class_name

    @property
    def tau(self) -> int:
        """Core neurons per target in the stored circuit (the largest tau it can be pruned to)."""
        return int(self.circuit.transitions[0].core.shape[1])

    @property
    def k(self) -> int:
        return int(self.circuit.transitions[0].top_patches.shape[1])

    @property
    def images(self) -> torch.Tensor:
        return self.patches.images

    @property
    def model(self) -> torch.nn.Module:
        """The spec's model on the subject's device, in eval mode: the caller's own when it lives there, else one
        copy made on first use (``devices.on_device``) that every experiment shares; the caller's is never moved."""
        if "model" not in self._cache:
            self._cache["model"] = on_device(self.spec.model, self.device)
        return self._cache["model"].eval()

    def knockout(self, index: int) -> Knockout:
        """The knockout helper of ``circuit.transitions[index]`` (targets in its layer, knocked-out neurons below)."""
        self.layouts()
        if index not in self._cache:
            tr = self.circuit.transitions[index]
            self._cache[index] = Knockout(self.model, self.patches, tr.lower, tr.layer, self.spec.normalize,
                                          self.spec.input_size, self.device, self.batch_size,
                                          maps=lambda: self.lower_maps()[tr.lower])
        return self._cache[index]

    def lower_maps(self) -> dict[str, torch.Tensor]:
        """Outputs of every layer below the logit layer for every patch (P×C×H×W or P×C), in one pass."""
        if "maps" not in self._cache:
            layers = list(self.circuit.layers[1:])
            parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
            model = self.model
            with torch.no_grad(), capture(model, layers) as seen:
                for start in range(0, len(self.patches), self.batch_size):
                    ids = np.arange(start, min(start + self.batch_size, len(self.patches)))
                    model(self.spec.normalize(self.patches.crops(ids, self.spec.input_size)).to(self.device))
                    for name in layers:
                        parts[name].append(seen[name].float())
            self._cache["maps"] = {name: torch.cat(chunks) for name, chunks in parts.items()}
        return self._cache["maps"]

    def layouts(self) -> dict[str, Layout]:
        """Every listed layer's layout (stated by the spec or inferred), recorded on the model's modules."""
        if "layouts" not in self._cache:
            model = self.model
            example = self.spec.normalize(self.images[:2]).to(self.device)
            self._cache["layouts"] = self.spec.resolve_layouts(model, example)
        return self._cache["layouts"]

    def memo(self, key: object, compute: Callable[[], object]) -> object:
        """``compute()``, computed once per subject and ``key``."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def widths(self) -> dict[str, int]:
        """Number of neurons of every listed layer."""
        if "widths" not in self._cache:
            model = self.model
            example = self.spec.normalize(self.images[:1]).to(self.device)
            with torch.no_grad(), capture(model, self.spec.layers) as seen:
                model(example)
            layouts = self.layouts()
            self._cache["widths"] = {name: layouts[name].width(seen[name]) for name in self.spec.layers}
        return self._cache["widths"]


def preset_spec(meta: RunMeta) -> ModelSpec:
    """The ModelSpec of a bundle written from a model preset (run.json ``model.preset``), with the run's weights.

    The model is rebuilt from the recorded weights name or checkpoint; weights whose digest is not the
    run's ``weights_sha256`` (a checkpoint retrained since) are refused rather than evaluated as the run's.
    """
    from neurflow_graph.engine.pipeline import weights_sha256
    from neurflow_graph.models.presets import get_preset

    model = meta.model
    if not model.preset:
        raise ArtifactError(
            f"run {meta.run_id!r} was not made from a model preset; build a Subject in Python with its ModelSpec"
        )
    preset = get_preset(model.preset)
    built = preset.build(weights=model.weights, checkpoint=model.checkpoint)
    digest = weights_sha256(built)
    if digest != meta.weights_sha256:
        where = model.checkpoint or model.weights or "random initialisation"
        raise ArtifactError(
            f"the weights from {where} (sha256 {digest[:12]}) are not run {meta.run_id}'s "
            f"({meta.weights_sha256[:12]}); restore that checkpoint or compute a new run"
        )
    return preset.model_spec(built, name=model.name, layers=meta.layers, weights=model.weights,
                             checkpoint=model.checkpoint, weights_sha256=digest)


def subject_from_bundle(bundle: Bundle | str | os.PathLike, spec: ModelSpec | None = None,
                        device: str = "cpu") -> Subject:
    """A Subject from a bundle (object or directory); ``spec`` defaults to the preset named in run.json.

    Images read back from disk are quantised to 8 bits, so recomputed activations can differ slightly
    from the run's; the experiments recompute each concept from the same data they knock out.
    """
    if not isinstance(bundle, Bundle):
        bundle = read_bundle(bundle)
    spec = spec or preset_spec(bundle.meta)
    if tuple(spec.layers) != tuple(bundle.circuit.layers):
        raise ConfigError(f"spec layers {list(spec.layers)} differ from the run's {list(bundle.circuit.layers)}")
    return Subject(spec=spec, meta=bundle.meta, patches=bundle.patches, circuit=bundle.circuit,
                   device=resolve_device(device))


def with_overrides(recipe, augment: int | None = None, layers: tuple[str, ...] | None = None):
    """The recipe with ``augment`` copies per sample photo (skimage sources only) and/or another layer list."""
    if augment is not None:
        if recipe.images.source != "skimage":
            raise ConfigError(f"augment applies to skimage image sources, the recipe uses {recipe.images.source!r}")
        recipe = dataclasses.replace(recipe, images=dataclasses.replace(recipe.images, augment=augment))
    if layers:
        recipe = dataclasses.replace(recipe, layers=tuple(layers))
    return recipe
