"""Fidelity of core neurons (paper Figure 5): class accuracy when the circuit's neurons are masked or retained.

For each tau, the circuit (pruned to tau) gives a set of neurons per layer. Masking zeroes those
neurons' feature maps; retaining zeroes every other neuron of the layer. Either is applied at one
layer (``single``) or at every layer from the one below the logit down to it (``cumulative``), and
compared with random sets of the same sizes and with the circuit grown by L2 weight norms instead of
integrated gradients (Cammarata et al.; see l2.py). The metric is the share of the class images,
all predicted as the class without masking, that are still predicted as the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..errors import DataError
from .l2 import weight_norms
from .masking import keep_mask, predict_masked
from .prune import prune
from .slicing import from_layer
from .stats import groups
from .subject import Subject
from .table import columns, run_columns

KIND = "fidelity"
SCOPES = ("single", "cumulative")
MODES = ("mask", "retain")
METHODS = ("core", "random", "l2")


def circuit_neurons(subject: Subject, tau: int) -> dict[str, np.ndarray]:
    """The neurons of the circuit pruned to ``tau`` in each layer below the logit layer."""
    circuit = prune(subject.circuit, tau)
    return {layer: circuit.neurons(i) for i, layer in enumerate(circuit.layers) if i > 0}


def l2_circuit_neurons(subject: Subject, tau: int) -> dict[str, np.ndarray]:
    """The circuit grown from the class logit by top-``tau`` L2 weight norms; stops above a layer without them."""
    neurons, targets = {}, np.array([subject.class_index])
    for index, tr in enumerate(subject.circuit.transitions):
        norms = l2_norms(subject, index)
        if norms is None:
            break
        core = np.argsort(-norms[targets], axis=1, kind="stable")[:, :tau]
        targets = neurons[tr.lower] = np.unique(core)
    return neurons


def l2_norms(subject: Subject, index: int) -> np.ndarray | None:
    """Weight norms (U×C) of ``circuit.transitions[index]``, cached on the subject."""
    return subject.memo(("l2", index), lambda: weight_norms(subject.knockout(index)))[0]


def evaluate_fidelity(subject: Subject, taus: Sequence[int] = (4, 8, 16), samples: int = 20,
                      rng: np.random.Generator | int | None = 0, progress: bool = False) -> pa.Table:
    """One row per (tau, scope, mode, layer, method, sample): the share of class images still predicted as the class.

    ``random`` has ``samples`` rows per configuration (new random sets for every layer of the scope);
    ``core`` and ``l2`` have one. ``n_neurons`` counts the neurons masked or retained over the scope.
    """
    rng = np.random.default_rng(rng)
    widths = subject.widths()
    layers = list(subject.circuit.layers[1:])
    images = subject.spec.normalize(subject.images)
    plain = _plain(subject, images)
    images = images[plain == subject.class_index]
    if not len(images):
        raise DataError(f"none of run {subject.run_id}'s images is predicted as class {subject.class_index}; "
                        "check the model weights")
    configs: list[dict] = []
    keeps: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    for tau in taus:
        sets = {"core": circuit_neurons(subject, tau), "l2": l2_circuit_neurons(subject, tau)}
        for scope in SCOPES:
            for depth, layer in enumerate(layers):
                scoped = layers[: depth + 1] if scope == "cumulative" else [layer]
                for mode in MODES:
                    base = {"tau": tau, "scope": scope, "mode": mode, "layer": layer, "layer_index": depth + 1}
                    for method in METHODS:
                        for sample in range(samples if method == "random" else 1):
                            chosen = _chosen(method, sets, scoped, widths, rng)
                            if chosen is None:
                                continue
                            configs.append({**base, "method": method, "sample": sample,
                                            "n_neurons": sum(len(v) for v in chosen.values())})
                            for name in layers:
                                keeps[name].append(keep_mask(widths[name], chosen[name], mode) if name in chosen
                                                   else np.ones(widths[name], dtype=bool))
    forward, start, inputs = from_layer(subject.model, images, layers[-1], layers[:-1], subject.device)
    with tqdm(total=len(configs), desc="fidelity masks", unit="mask", disable=not progress, leave=False) as bar:
        predicted = predict_masked(subject.model, inputs, {k: np.stack(v) for k, v in keeps.items()},
                                   subject.device, progress=bar.update, forward=forward, start=start)
    accuracy = (predicted == subject.class_index).mean(axis=1)
    fixed = {**run_columns(subject), "n_images": len(images),
             "unmasked_accuracy": float((plain == subject.class_index).mean())}
    rows = [{**fixed, **config, "accuracy": float(acc)} for config, acc in zip(configs, accuracy, strict=True)]
    return pa.Table.from_pylist(rows)


def _plain(subject: Subject, images: torch.Tensor) -> np.ndarray:
    """Unmasked top-1 predictions of the (normalised) images."""
    model = subject.model
    with torch.no_grad():
        return np.concatenate([model(batch.to(subject.device)).argmax(dim=1).cpu().numpy()
                               for batch in images.split(256)])


def _chosen(method: str, sets: dict, scoped: list[str], widths: dict[str, int],
            rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    if method == "random":
        return {name: np.sort(rng.choice(widths[name], size=len(sets["core"][name]), replace=False))
                for name in scoped}
    if not all(name in sets[method] for name in scoped):
        return None
    return {name: sets[method][name] for name in scoped}


def summarize_fidelity(table: pa.Table) -> list[dict]:
    """Per (tau, scope, mode, layer, method): mean accuracy over runs and random samples, its spread, set sizes."""
    c = columns(table)
    out = []
    for (tau, scope, mode, index, method), rows in groups(c, ["tau", "scope", "mode", "layer_index",
                                                              "method"]).items():
        acc = c["accuracy"][rows]
        out.append({"tau": int(tau), "scope": str(scope), "mode": str(mode), "layer_index": int(index),
                    "layer": str(c["layer"][rows[0]]), "method": str(method),
                    "n_runs": len(set(c["run_id"][rows].tolist())), "n_rows": len(rows),
                    "accuracy": float(acc.mean()), "accuracy_sd": float(acc.std()),
                    "n_neurons": float(c["n_neurons"][rows].mean())})
    return out


def headline_fidelity(table: pa.Table) -> dict:
    """Mean accuracy per mode and method over every tau, scope and layer (the paper's expected order:
    mask core < mask random, retain core > retain random)."""
    c = columns(table.select(["mode", "method", "accuracy"]))
    out = {}
    for (mode, method), rows in groups(c, ["mode", "method"]).items():
        out[f"{mode}_{method}_accuracy"] = float(c["accuracy"][rows].mean())
    return out
