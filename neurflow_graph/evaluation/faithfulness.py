"""How far to trust a circuit: per layer, its core neurons masked and retained against random sets of the same size.

For every layer below the logit layer, the circuit's neurons there (the core children of the layer above,
``fidelity.circuit_neurons`` at the run's tau) are masked (feature maps zeroed) on the run's own images, and
so are ``sets`` random sets of the same size from the same layer. The figures are the drop of the class logit
and probability (means over the images) with the random sets' mean, standard deviation and the core's z; and,
retaining only those neurons (every other neuron of the layer zeroed), the share of the class logit kept,
against random sets likewise. One forward pass over the images records every circuit layer's outputs; then all
masks of a layer run in one ``masking.masked_outputs`` call on the model sliced above that layer
(``slicing.model_top``, the mechanism of ``evaluate fidelity`` and ``debug``), in batches sized by the memory
budget (the peak measured on the lowest layer's slice, which holds every higher one). The random sets of layer
``i`` come from ``numpy.random.default_rng((seed, i))`` through ``stats.random_sets``, so the figures repeat.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neurflow_graph.engine.devices import default_budget_mb
from neurflow_graph.engine.layers import capture
from neurflow_graph.engine.layouts import layout_of
from neurflow_graph.engine.memory import call_peak
from neurflow_graph.engine.meta import FAITHFULNESS_LAYER_FIELDS
from neurflow_graph.engine.params import FaithfulnessSettings
from neurflow_graph.errors import DataError

from .fidelity import circuit_neurons
from .masking import keep_mask, masked_outputs
from .slicing import model_top
from .stats import random_sets
from .subject import Subject

Z_BEATS = 2.0
"""Core beats random at a layer when its logit drop (masked) and its kept logit share (retained) are both at least
this many standard deviations of the random sets above their mean."""
STD_FLOOR = 1e-12
"""A z divides by the random sets' standard deviation, floored here: when every random set does the same (a layer
whose every neuron is core has one such set) a core doing the same scores 0."""
MAX_BATCH = 8192
"""Most images x masks in one forward pass, whatever the budget allows."""

LAYER_FIELDS = tuple(FAITHFULNESS_LAYER_FIELDS)
"""The per-layer figures, in the order the bundle, the store and the query give them."""


@dataclass(frozen=True)
class Faithfulness:
    """The figures of one run: one dict per layer (LAYER_FIELDS, then the random sets' own figures)."""

    settings: FaithfulnessSettings
    layers: tuple[dict[str, Any], ...]
    seconds: float = 0.0
    batch_size: int = 0  # images x masks per forward pass, as the memory budget allowed

    def summary(self) -> dict[str, Any]:
        """What a person reads at a glance: the weakest layer and its z, and whether core beats random everywhere."""
        return summarize(self.layers)

    def record(self) -> dict[str, Any]:
        """The run.json ``faithfulness`` section (docs/artifacts.md): settings, summary and the per-layer figures."""
        return {"level": self.settings.level, "sets": self.settings.sets, "seed": self.settings.seed,
                "z_beats": Z_BEATS, **self.summary(), "layers": [dict(r) for r in self.layers]}


def summarize(layers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary of per-layer figures: the weakest layer by the logit z, the layers where core beats random, a verdict.

    A layer whose every neuron is core has no random set to compare with (each is the core itself): it is named
    in ``whole_layers`` and left out of the verdict.
    """
    whole = [r["layer"] for r in layers if r["n_core"] >= r["width"]]
    tested = [r for r in layers if r["n_core"] < r["width"]]
    weakest = min(tested or layers, key=lambda r: r["logit_z"])
    beating = sum(bool(r["beats_random"]) for r in tested)
    everywhere = bool(tested) and beating == len(tested)
    verdict = ("no layer to test: every layer's core is the whole layer" if not tested else
               f"holds up: core beats random at every layer ({len(tested)})" if everywhere else
               "does not hold up: core beats random at no layer" if beating == 0 else
               f"partly: core beats random at {beating} of {len(tested)} layers")
    if whole:
        verdict += f"; {', '.join(whole)}: the core is the whole layer, nothing to compare"
    return {"verdict": verdict, "weakest_layer": weakest["layer"], "weakest_z": weakest["logit_z"],
            "n_layers": len(tested), "n_beating": beating, "beats_random_everywhere": everywhere,
            "whole_layers": whole}


def layer_masks(width: int, core: np.ndarray, rng: np.random.Generator, sets: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep masks, random sets) of one layer: rows are unmasked, core masked, ``sets`` random masked, core
    retained, the same random sets retained; the random sets are ``stats.random_sets`` of the core's size."""
    randoms = random_sets(rng, width, len(core), sets)
    rows = [np.ones(width, dtype=bool), keep_mask(width, core, "mask")]
    rows += [keep_mask(width, r, "mask") for r in randoms]
    rows += [keep_mask(width, core, "retain")]
    rows += [keep_mask(width, r, "retain") for r in randoms]
    return np.stack(rows), randoms


def layer_figures(logits: np.ndarray, class_index: int, n_random: int) -> dict[str, Any]:
    """The figures of one layer from the logits (M×N×K) of ``layer_masks``' rows (1 + 2 × (1 + n_random) rows)."""
    logits = torch.from_numpy(np.asarray(logits)).double()
    cls = logits[:, :, class_index]
    prob = logits.softmax(dim=2)[:, :, class_index]
    base_logit, base_prob = cls[0], prob[0]
    masked = slice(1, 2 + n_random)
    retained = slice(2 + n_random, 3 + 2 * n_random)
    logit_drops = (base_logit - cls[masked]).mean(dim=1).numpy()
    prob_drops = (base_prob - prob[masked]).mean(dim=1).numpy()
    kept = (cls[retained].mean(dim=1) / base_logit.mean()).numpy()
    predicted = logits.argmax(dim=2)
    out = {"n_images": int(logits.shape[1]), "base_logit": float(base_logit.mean()),
           "base_prob": float(base_prob.mean())}
    for name, values in (("logit_drop", logit_drops), ("prob_drop", prob_drops), ("kept_share", kept)):
        core, rand = float(values[0]), values[1:]
        mean, std = float(rand.mean()), float(rand.std(ddof=1)) if len(rand) > 1 else 0.0
        out[name] = core
        out[f"random_{name}_mean"], out[f"random_{name}_std"] = mean, std
        out[f"random_{name}s"] = [float(v) for v in rand]
        out[_Z[name]] = (core - mean) / max(std, STD_FLOOR)
    out["mask_accuracy"] = float((predicted[1] == class_index).double().mean())
    out["retain_accuracy"] = float((predicted[2 + n_random] == class_index).double().mean())
    out["beats_random"] = all(out[z] >= Z_BEATS for z in ("logit_z", "kept_z"))
    return out


_Z = {"logit_drop": "logit_z", "prob_drop": "prob_z", "kept_share": "kept_z"}


def measure_faithfulness(subject: Subject, settings: FaithfulnessSettings | None = None,
                         memory_budget_mb: float | None = None,
                         log: Callable[[str], None] = lambda _msg: None) -> Faithfulness:
    """Mask and retain each layer's circuit neurons on ``subject``'s images against random sets (module docstring).

    ``memory_budget_mb`` defaults to the device's (``devices.default_budget_mb``), as the run's own stages do.
    ``log`` hears one line per layer as it finishes (a caller stopping there leaves nothing half-made).
    """
    settings = settings or FaithfulnessSettings()
    memory_budget_mb = memory_budget_mb or default_budget_mb(subject.device)
    started = time.perf_counter()
    images = subject.spec.normalize(subject.images)
    if not len(images):
        raise DataError(f"run {subject.run_id} has no images to measure its faithfulness on")
    layers = list(subject.circuit.layers[1:])
    model = subject.model  # on the device, the caller's never moved
    logits, outputs = _forward(model, images, layers, subject.device, subject.batch_size)
    cores = circuit_neurons(subject, subject.tau)
    example = images[:2].to(subject.device)
    tops = {layer: model_top(model, layer, (), example, reference=(outputs[layer][:2], logits[:2]))
            for layer in layers}
    # the lowest layer's slice holds every higher one: the batch it affords is safe for all of them
    low = layers[-1]
    batch_size = _batch_size(model, tops[low], outputs[low] if tops[low] is not None else images, subject.device,
                             memory_budget_mb)
    rows = []
    for index, layer in enumerate(layers, start=1):
        out, top = outputs[layer], tops[layer]
        width = layout_of(model, layer, out).width(out)
        forward, start, inputs = (top, layer, out) if top is not None else (None, None, images)
        keep, _randoms = layer_masks(width, cores[layer], np.random.default_rng((settings.seed, index)),
                                     settings.sets)
        logits_masked = masked_outputs(model, inputs, {layer: keep}, subject.device, batch_size,
                                       forward=forward, start=start)
        figures = layer_figures(logits_masked, subject.class_index, len(keep) // 2 - 1)
        rows.append(_ordered({"layer": layer, "layer_index": index, "n_core": len(cores[layer]),
                              "width": width, **figures}))
        log(f"  faithfulness {layer}: core logit drop {figures['logit_drop']:.3g} vs random "
               f"{figures['random_logit_drop_mean']:.3g} ± {figures['random_logit_drop_std']:.2g} "
               f"(z {_fmt(figures['logit_z'])}), kept {figures['kept_share']:.2f} vs "
               f"{figures['random_kept_share_mean']:.2f} (z {_fmt(figures['kept_z'])})")
    return Faithfulness(settings, tuple(rows), seconds=time.perf_counter() - started, batch_size=batch_size)


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    """The row with LAYER_FIELDS first (then the random draws), so every reader sees the same order."""
    return {**{k: row[k] for k in LAYER_FIELDS}, **{k: v for k, v in row.items() if k not in LAYER_FIELDS}}


def _fmt(z: float) -> str:
    return f"{z:.1f}" if math.isfinite(z) else str(z)


@torch.no_grad()
def _forward(model: torch.nn.Module, images: torch.Tensor, layers: list[str], device: torch.device,
             batch_size: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's logits on ``images`` and every circuit layer's outputs, in one pass over them."""
    logits: list[torch.Tensor] = []
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with capture(model, layers) as seen:
        for batch in images.split(max(1, batch_size)):
            logits.append(model(batch.to(device)))
            for name in layers:
                parts[name].append(seen[name])
    return torch.cat(logits), {name: torch.cat(chunks) for name, chunks in parts.items()}


def _batch_size(model: torch.nn.Module, forward, inputs: torch.Tensor, device: torch.device,
                memory_budget_mb: float) -> int:
    """Images x masks per forward pass of the part above the layer that keep its measured peak within the budget."""
    run = (forward or model).eval()  # both on the device already: built from ``subject.model``
    if len(inputs) < 2:
        return 256

    @torch.no_grad()
    def one(ids: np.ndarray) -> torch.Tensor:
        return run(inputs[ids].to(device))

    peak, _ = call_peak(one, np.arange(2))
    return int(min(MAX_BATCH, peak.items_within(memory_budget_mb * 2**20)))
