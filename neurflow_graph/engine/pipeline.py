"""The whole NeurFlow computation for one model and class: images -> patches -> ... -> neuron groups."""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from neurflow_graph._version import __version__
from neurflow_graph.engine.activations import compute_activations, feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients, Tuning, default_precision
from neurflow_graph.engine.circuit import Circuit, build_circuit
from neurflow_graph.engine.devices import default_budget_mb, float32_matmuls, frozen, on_device, resolve_device
from neurflow_graph.engine.groups import NeuronGroups, find_neuron_groups
from neurflow_graph.engine.layers import bridge, layer_widths, validate_layers
from neurflow_graph.engine.layouts import Layout, channels_first_bridge, held_inputs, resolve_layouts
from neurflow_graph.engine.meta import LayerStats, RunMeta
from neurflow_graph.engine.params import NeurFlowParams, run_identity
from neurflow_graph.engine.patches import Patches, make_patches
from neurflow_graph.errors import ConfigError
from neurflow_graph.ids import run_id


@dataclass(frozen=True)
class Bundle:
    """Everything one run computed: its run record (run.json), patches, the hypertree and the neuron groups."""

    meta: RunMeta
    patches: Patches
    circuit: Circuit
    groups: NeuronGroups


@dataclass(frozen=True)
class ModelSpec:
    """A model and what is needed to feed it: its name, layers (logit first) and input normalisation."""

    name: str
    model: nn.Module
    layers: tuple[str, ...]
    input_size: int
    normalize: Callable[[torch.Tensor], torch.Tensor]
    provenance: dict = field(default_factory=dict)
    weights_sha256: str | None = None  # weights_sha256(model); computed by the run when None
    layouts: Mapping[str, str] = field(default_factory=dict)
    """Layouts of layers whose output does not fix it (``units``, ``channels_first``, ``channels_last``, ``tokens``)."""
    tokens: str = "patches"
    """A token layer's neuron activation: mean over the ``patches`` tokens, ``all`` tokens, or the ``cls`` token."""

    def resolve_layouts(self, model: nn.Module, example: torch.Tensor) -> dict[str, Layout]:
        """Each listed layer's layout, stated here or inferred (layouts.resolve_layouts), recorded on ``model``."""
        return resolve_layouts(model, self.layers, example, self.layouts, self.tokens)

    def identity(self) -> dict:
        """What of the model enters the run id: its provenance, and layouts/tokens when stated."""
        stated = {"layouts": dict(sorted(self.layouts.items()))} if self.layouts else {}
        return {**self.provenance, **stated, **({"tokens": self.tokens} if self.tokens != "patches" else {})}

    def weights_digest(self) -> str:
        """The digest of the model's weights: the one given, else computed from the model now."""
        return self.weights_sha256 or weights_sha256(self.model)


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 of the model's state dict: each tensor's name, dtype, shape and bytes, in sorted name order.

    Buffers (batch-norm statistics) count, since they change the outputs; the digest of a ResNet50 takes
    well under a second on one CPU core (benchmarks/weights_digest.py).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tau_caps(tau: int, widths: Mapping[str, int], lower_layers: Sequence[str]) -> dict[str, int]:
    """The tau each lower layer narrower than ``tau`` gets instead: its width - 1, so that one neuron at least stays
    out of every core set (a layer all core would say nothing). Empty when every layer is wider than tau.

    The caps follow from tau, the model and the layers, which the run id hashes already, so they leave it as is;
    the run records them in run.json ``tau_caps``. A layer of one neuron cannot have a core set: ConfigError.
    """
    caps = {name: widths[name] - 1 for name in lower_layers if tau >= widths[name]}
    for name, cap in caps.items():
        if cap < 1:
            raise ConfigError(f"layer {name!r} has {widths[name]} neuron, so no core set can leave one out; "
                              "list wider layers (--layers)")
    return caps


class NeurFlow:
    """Computes a NeurFlow circuit; parameters are fixed at construction, ``run`` does the work."""

    def __init__(self, params: NeurFlowParams | None = None, progress: bool = True, tuning: Tuning | None = None,
                 **overrides):
        self.params = NeurFlowParams(**{**asdict(params or NeurFlowParams()), **overrides})
        self.progress = progress
        self.tuning = tuning  # how IG lays out its passes (speed and memory only; benchmarks compare choices)

    def run(
        self,
        spec: ModelSpec,
        class_index: int,
        images: torch.Tensor,
        image_sha256: Sequence[str],
        class_name: str | None = None,
        image_provenance: dict | None = None,
    ) -> Bundle:
        """Run every stage on ``images`` (N×C×S×S in [0, 1], all predicted as the class) and return the bundle."""
        p = self.params
        device = resolve_device(p.device)  # once: every later decision compares against this indexed device
        precision = p.precision if p.precision != "auto" else default_precision(device)
        # Strict fp32 unless the run asked for TF32: CUDA's default TF32 changes top-tau sets and stops folding.
        model = on_device(spec.model, device)  # the caller's model is not moved, and keeps its mode and grad flags
        with float32_matmuls(tf32=precision == "tf32"), frozen(model):
            return self._run(spec, model, class_index, images, image_sha256, class_name, image_provenance, device,
                             precision)

    def _run(self, spec, model, class_index, images, image_sha256, class_name, image_provenance, device, precision
             ) -> Bundle:
        p = self.params
        budget_mb = p.memory_budget_mb or default_budget_mb(device)
        torch.manual_seed(p.seed)
        digest = spec.weights_digest()
        example = spec.normalize(images[:2]).to(device)
        layers = validate_layers(model, spec.layers, example, spec.layouts, spec.tokens)
        layouts = spec.resolve_layouts(model, example)
        with torch.no_grad():
            n_classes = model(example[:1]).shape[1]
        if not 0 <= class_index < n_classes:
            raise ConfigError(
                f"class index {class_index} is out of range; the model has {n_classes} classes (0..{n_classes - 1})"
            )
        timings: dict[str, float] = {}

        started = time.perf_counter()
        patches = make_patches(images.float(), p.granularities, p.stride_ratio)
        if p.k > len(patches):
            raise ConfigError(
                f"k={p.k} is larger than the {len(patches)} patches of {len(images)} images; "
                "lower k or add images"
            )
        caps = tau_caps(p.tau, layer_widths(model, layers, example, spec.layouts, spec.tokens), layers[1:])
        timings["patches"] = time.perf_counter() - started

        started = time.perf_counter()
        with self._bar("activations", len(patches), "patch") as bar:
            activations = compute_activations(
                model, patches, layers, spec.normalize, spec.input_size, p.batch_size, device, bar.update,
                budget_mb,
            )
        timings["activations"] = time.perf_counter() - started

        ig = IntegratedGradients(
            n_steps=p.n_steps, method=p.method, precision=precision,
            internal_batch_size=p.internal_batch_size, device=device, tolerance=p.tolerance,
            memory_budget_mb=budget_mb, tuning=self.tuning,
        )

        def attribute(upper, lower, targets, top):
            # IG runs on the channels-first view of every layout (B×C×positions in, B×C activations out).
            sub = channels_first_bridge(bridge(model, lower, upper, example), layouts[lower], layouts[upper])
            with self._bar(f"IG {lower}->{upper}", int(top.size), "pair") as bar:
                return ig.attribute(
                    sub,
                    held_inputs(sub, lambda ids: layouts[lower].to_channels_first(feature_maps(
                        model, patches, lower, ids, spec.normalize, spec.input_size, p.batch_size, device)),
                        lambda ids: spec.normalize(patches.crops(ids, spec.input_size))),  # skip paths held
                    targets, top, progress=bar.update,
                )

        started = time.perf_counter()
        circuit = build_circuit(list(layers), class_index, activations, attribute, p.k, p.tau, p.max_semantic_groups,
                                tau_by_layer=caps)
        timings["circuit"] = time.perf_counter() - started

        started = time.perf_counter()
        groups = find_neuron_groups(circuit, activations, p.max_neuron_groups, p.n_exemplars)
        timings["groups"] = time.perf_counter() - started

        meta = RunMeta.new(
            model={"name": spec.name, "num_classes": int(n_classes), **spec.identity()},  # the run id's model
            weights_sha256=digest, class_index=class_index,
            class_name=class_name if class_name is not None else str(class_index), layers=layers,
            params={**self.recorded_params(spec, device), "memory_budget_mb": round(budget_mb, 1)},
            tau_caps=caps, images={"kept": len(images), "sha256": list(image_sha256), **(image_provenance or {})},
            layer_stats={tr.layer: LayerStats(lower=tr.lower, targets=len(tr.targets), n_steps=tr.n_steps,
                                              completeness_error=tr.completeness_error, seconds=round(tr.seconds, 3))
                         for tr in circuit.transitions},
            stage_seconds={k: round(v, 3) for k, v in timings.items()}, versions=_versions(),
        )
        return Bundle(meta=meta, patches=patches, circuit=circuit, groups=groups)

    def run_id(self, spec: ModelSpec, class_index: int, image_sha256: Sequence[str]) -> str:
        """The id ``run`` will give these inputs, known before any heavy work (to skip finished runs)."""
        params = self.recorded_params(spec, resolve_device(self.params.device))
        identity = run_identity(spec.name, spec.identity(), spec.weights_digest(), spec.layers, class_index,
                                image_sha256, params)
        return run_id(spec.name, class_index, identity)

    def recorded_params(self, spec: ModelSpec, device: torch.device) -> dict:
        """The parameters as run.json records them: precision resolved (the one used), the device resolved to its
        index (``cuda:0``), the input size added."""
        p = self.params
        precision = p.precision if p.precision != "auto" else default_precision(device)
        return {**asdict(p), "precision": precision, "device": str(device), "input_size": spec.input_size}

    def _bar(self, desc: str, total: int, unit: str):
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, leave=False, dynamic_ncols=True)


def _versions() -> dict[str, str]:
    import pyarrow
    import sklearn

    return {"neurflow_graph": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "scikit_learn": sklearn.__version__, "pyarrow": pyarrow.__version__, "python": platform.python_version()}
