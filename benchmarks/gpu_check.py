"""The GPU path's figures, one stage per call (benchmarks/gpu_check.sh runs the stages, each under a time cap).

    python benchmarks/gpu_check.py OUTDIR --stage transition   # on a CUDA GPU
    python benchmarks/gpu_check.py OUTDIR --stage backward
    python benchmarks/gpu_check.py OUTDIR --stage circuit
    python benchmarks/gpu_check.py OUTDIR --stage all --tiny   # every stage in seconds on the CPU (the tests' mode)

Stages (each merges its figures into OUTDIR/gpu_check.json as soon as it has them, so a run cut off still reports):
- ``transition``: ResNet50 layer4.1 -> layer4.2, the authors' way (Captum on the same device, PyTorch's default
  TF32 convolutions, sampled targets extrapolated) against the engine in strict fp32, TF32 and bf16, with the
  top-tau agreement of TF32 and bf16 with fp32;
- ``backward``: one IG pass at the circuit's real shapes (one patch x 50 steps, 64 to 300 target slots, layer3),
  the per-slot ``autograd.grad`` loop against the batched vector-Jacobian product, times and largest difference;
- ``circuit``: a whole ResNet50 class circuit at k 50, tau 16, N 50, 11 layers (random weights: timing does not
  depend on them; nothing is downloaded) with the defaults a user gets (``auto`` precision and budget): seconds
  per stage (activations, IG, clustering, groups), targets per layer, peak GPU memory, whether each bridge's batch
  norms were folded, bf16's top-tau agreement with fp32 on re-attributed transitions, and the authors' projected
  time (Captum seconds per target, sampled per transition, times its targets).
Captum is imported only where the authors' way runs; without it those figures say so and the rest runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from neurflow_graph.engine import attribution as attribution_module
from neurflow_graph.engine.activations import compute_activations, feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients
from neurflow_graph.engine.devices import float32_matmuls, resolve_device
from neurflow_graph.engine.layers import bridge, neuron_activations
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow
from neurflow_graph.errors import ConfigError
from neurflow_graph.models.images import skimage_images
from neurflow_graph.models.presets import get_preset

NAMES = ["chelsea", "coffee", "astronaut", "rocket"]
FULL = dict(input_size=224, images=50, granularities=(1.0, 0.5, 0.25), layers=None, k=50, tau=16, n_steps=50,
            transition_targets=16, sample=2, backward_layer=("layer3.4", "layer3.5"), slots=(64, 128, 300),
            compare_transitions=3)
TINY = dict(input_size=64, images=3, granularities=(1.0, 0.5), layers=3, k=4, tau=2, n_steps=3,
            transition_targets=2, sample=1, backward_layer=("layer3.4", "layer3.5"), slots=(8,),
            compare_transitions=1)
STAGES = ("transition", "backward", "circuit")


def record(out: Path, key: str, value) -> None:
    """Merge ``{key: value}`` into OUTDIR/gpu_check.json at once (written whole, then renamed into place)."""
    path = out / "gpu_check.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[key] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, indent=2, default=float))
    os.replace(tmp, path)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def top_sets(scores: np.ndarray, tau: int) -> list[frozenset]:
    """Each target's top-tau lower neurons by mean |score| (what becomes its core set)."""
    importance = np.abs(scores).mean(axis=1)
    return [frozenset(np.argsort(-imp, kind="stable")[:tau].tolist()) for imp in importance]


def authors_per_target(sub, maps_of, targets, top, rows, n_steps) -> float | str:
    """Captum seconds per target on ``rows`` (the authors' script: one call per target, 4 patches per call), or
    why it could not run. One untimed call first (their script pays kernel set-up once)."""
    try:
        from captum.attr import IntegratedGradients as CaptumIG
    except ImportError:
        return "captum is not installed (build .whl with `make gpu-wheels` and carry it)"

    class Means(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return neuron_activations(self.inner(x))

    ig = CaptumIG(Means(sub))
    x = maps_of(top[rows[0], :4])
    ig.attribute(x, baselines=x * 0, target=int(targets[rows[0]]), n_steps=n_steps)
    seconds = 0.0
    for row in rows:
        maps = maps_of(top[row])
        sync(maps.device)
        started = time.perf_counter()
        for i0 in range(0, top.shape[1], 4):
            x = maps[i0 : i0 + 4]
            ig.attribute(x, baselines=x * 0, target=int(targets[row]), n_steps=n_steps).sum().item()
        seconds += time.perf_counter() - started
    return seconds / len(rows)


def sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, min(k, n), replace=False))


def setup(cfg, device):
    torch.manual_seed(0)
    preset = get_preset("resnet50")
    model = preset.build().eval().to(device)  # random weights; the bridges below copy nothing they need not
    images = skimage_images(NAMES, cfg["input_size"], augment=-(-cfg["images"] // len(NAMES)) - 1).images
    return preset, model, images[: cfg["images"]]


def stage_transition(cfg, device, out: Path) -> dict:
    """layer4.1 -> layer4.2 with its most active targets: Captum (sampled) against the engine's precisions."""
    preset, model, images = setup(cfg, device)
    size, rng = cfg["input_size"], np.random.default_rng(0)
    lower, upper = "layer4.1", "layer4.2"
    images = images[:4]
    patches = make_patches(images, cfg["granularities"])
    acts = compute_activations(model, patches, [upper, lower], preset.normalize, size, device=device)
    targets = np.sort(np.argsort(-acts.values[upper].mean(0))[: cfg["transition_targets"]])
    top = acts.top_patches(upper, targets, cfg["k"])
    maps = feature_maps(model, patches, lower, np.arange(len(patches)), preset.normalize, size, device=device)
    example = preset.normalize(images[:2]).to(device)
    sub, plain = bridge(model, lower, upper, example), bridge(model, lower, upper, example, fold=False)
    for p in [*sub.parameters(), *plain.parameters()]:
        p.requires_grad_(False)
    result = {"lower": lower, "upper": upper, "targets": len(targets), "k": cfg["k"], "n_steps": cfg["n_steps"],
              "folded": not any(isinstance(m, torch.nn.BatchNorm2d) for m in sub.modules())}
    authors = authors_per_target(plain, lambda ids: maps[ids], targets, top,
                                 sample_rows(len(targets), cfg["sample"], rng), cfg["n_steps"])
    if isinstance(authors, str):
        result["authors"] = authors
    else:
        result["authors_s"] = authors * len(targets)
        result["authors_sampled"] = min(cfg["sample"], len(targets))
    record(out, "transition", result)
    scores = {}
    for precision in ("fp32", "tf32", "bf16"):
        if precision == "tf32" and device.type != "cuda":
            continue
        engine = IntegratedGradients(n_steps=cfg["n_steps"], precision=precision, device=device)
        engine.attribute(sub, lambda ids: maps[ids], targets, top[:, :1])  # warm-up (cuDNN autotuning)
        sync(device)
        started = time.perf_counter()
        scores[precision] = engine.attribute(sub, lambda ids: maps[ids], targets, top).scores
        sync(device)
        result[f"{precision}_s"] = time.perf_counter() - started
        if "authors_s" in result:
            result[f"ratio_{precision}"] = result["authors_s"] / result[f"{precision}_s"]
        if precision != "fp32":
            result[f"{precision}_top_identical"] = sum(
                a == b for a, b in zip(top_sets(scores[precision], cfg["tau"]), top_sets(scores["fp32"], cfg["tau"]),
                                       strict=True))
        record(out, "transition", result)
    return result


def stage_backward(cfg, device, out: Path) -> dict:
    """One IG pass at the circuit's shapes: 1 patch x N steps, R target slots; loop against batched backward."""
    preset, model, images = setup(cfg, device)
    lower, upper = cfg["backward_layer"]
    example = preset.normalize(images[:2]).to(device)
    sub = bridge(model, lower, upper, example)
    for p in sub.parameters():
        p.requires_grad_(False)
    patches = make_patches(images[:1], cfg["granularities"])
    x = feature_maps(model, patches, lower, np.arange(1), preset.normalize, cfg["input_size"], device=device)
    width = sub(x).shape[1]
    engine = IntegratedGradients(n_steps=cfg["n_steps"], device=device)
    alphas, weights = (torch.as_tensor(a, dtype=torch.float32, device=device)
                       for a in attribution_module.quadrature("gausslegendre", cfg["n_steps"]))
    result = {"lower": lower, "upper": upper, "rows": cfg["n_steps"], "map_shape": list(x.shape[1:]), "slots": {}}
    with float32_matmuls(tf32=False):
        for slots in cfg["slots"]:
            slot_target = torch.arange(min(slots, width), device=device).view(-1, 1)
            row = {}
            for name, block in (("loop", 1), ("batched", slots)):
                acc = torch.zeros((len(slot_target), *x.shape), device=device)
                seconds = []
                for _ in range(3):  # the first also warms up; the best of the other two counts
                    acc.zero_()
                    sync(device)
                    started = time.perf_counter()
                    engine._integrate(sub, x, slot_target, alphas, weights, cfg["n_steps"], acc, block)
                    sync(device)
                    seconds.append(time.perf_counter() - started)
                row[f"{name}_s"], row[name] = min(seconds[1:]), acc.clone()
            diff = float((row["batched"] - row["loop"]).abs().max() / row["loop"].abs().max().clamp(min=1e-30))
            result["slots"][str(len(slot_target))] = {
                "loop_s": row["loop_s"], "batched_s": row["batched_s"], "speedup": row["loop_s"] / row["batched_s"],
                "max_rel_diff": diff, "loop_calls": len(slot_target), "batched_calls": 1}
            record(out, "backward", result)
    return result


def stage_circuit(cfg, device, out: Path) -> dict:
    """The paper's ResNet50 circuit through the pipeline with a user's defaults, then comparisons beside it."""
    preset, model, images = setup(cfg, device)
    size, rng = cfg["input_size"], np.random.default_rng(0)
    layers = preset.layers[: cfg["layers"]] if cfg["layers"] else preset.layers
    with torch.no_grad():
        predicted = model(preset.normalize(images).to(device)).argmax(1).cpu()
    class_index = int(torch.mode(predicted).values)  # random weights: the class the images are predicted as
    spec = ModelSpec("resnet50", model, tuple(layers), size, preset.normalize, provenance={"preset": "resnet50"})
    ig_seconds: dict[str, float] = {}
    original = IntegratedGradients.attribute

    def timed(self, forward, inputs, targets, patch_ids, progress=None):  # the real call, timed per transition
        sync(self.device)
        started = time.perf_counter()
        result = original(self, forward, inputs, targets, patch_ids, progress)
        sync(self.device)
        ig_seconds[str(len(ig_seconds))] = time.perf_counter() - started
        record(out, "circuit_ig_seconds_so_far", ig_seconds)  # a run cut off still says how far it got
        return result

    IntegratedGradients.attribute = timed
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    flow = NeurFlow(progress=False, k=cfg["k"], tau=cfg["tau"], n_steps=cfg["n_steps"],
                    granularities=cfg["granularities"], device=str(device))  # precision and budget: the defaults
    started = time.perf_counter()
    try:
        bundle = flow.run(spec, class_index, images, [f"img{i}" for i in range(len(images))])
    finally:
        IntegratedGradients.attribute = original
    sync(device)
    seconds = time.perf_counter() - started
    example = preset.normalize(images[:2]).to(device)
    per_layer = []
    for i, tr in enumerate(bundle.circuit.transitions):
        stats = bundle.meta.layer_stats[tr.layer]
        sub = bridge(model, tr.lower, tr.layer, example)
        per_layer.append({"layer": tr.layer, "lower": tr.lower, "targets": int(len(tr.targets)),
                          "seconds": stats.seconds, "ig_s": ig_seconds.get(str(i)),
                          "clustering_s": stats.seconds - ig_seconds.get(str(i), 0.0),
                          "completeness_error": stats.completeness_error,
                          "folded": not any(isinstance(m, torch.nn.BatchNorm2d) for m in sub.modules())})
    result = {"class": class_index, "images": len(images), "patches": len(bundle.patches), "layers": list(layers),
              "precision": bundle.meta.params.precision, "device": bundle.meta.params.device,
              "memory_budget_mb": bundle.meta.params.memory_budget_mb, "seconds": seconds,
              "stage_seconds": bundle.meta.stage_seconds, "per_layer": per_layer,
              "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}
    record(out, "circuit", result)
    # Beside the run: bf16's top-tau sets against fp32's on the same targets and patches, the first transitions.
    if result["precision"] != "fp32":
        same = total = 0
        for tr in bundle.circuit.transitions[: cfg["compare_transitions"]]:
            sub = bridge(model, tr.lower, tr.layer, example)
            for p in sub.parameters():
                p.requires_grad_(False)
            maps_of = lambda ids, lower=tr.lower: feature_maps(model, bundle.patches, lower, ids,  # noqa: E731
                                                               preset.normalize, size, device=device)
            got = {p: IntegratedGradients(n_steps=cfg["n_steps"], precision=p, device=device).attribute(
                sub, maps_of, tr.targets, tr.top_patches).scores for p in ("fp32", result["precision"])}
            pairs = zip(top_sets(got["fp32"], cfg["tau"]), top_sets(got[result["precision"]], cfg["tau"]), strict=True)
            same += sum(a == b for a, b in pairs)
            total += len(tr.targets)
            result["top_tau_identical"] = f"{same}/{total}"
            record(out, "circuit", result)
    # The authors' projected time: Captum seconds per target, sampled on each transition, times its targets.
    authors = 0.0
    for row, tr in zip(per_layer, bundle.circuit.transitions, strict=True):
        sub = bridge(model, tr.lower, tr.layer, example, fold=False)
        for p in sub.parameters():
            p.requires_grad_(False)
        maps_of = lambda ids, lower=tr.lower: feature_maps(model, bundle.patches, lower, ids,  # noqa: E731
                                                           preset.normalize, size, device=device)
        per_target = authors_per_target(sub, maps_of, tr.targets, tr.top_patches,
                                        sample_rows(len(tr.targets), cfg["sample"], rng), cfg["n_steps"])
        if isinstance(per_target, str):
            result["authors"] = per_target
            break
        row["authors_projected_s"] = per_target * len(tr.targets)
        authors += row["authors_projected_s"]
        result["authors_projected_s"] = authors
        record(out, "circuit", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for gpu_check.json")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    parser.add_argument("--tiny", action="store_true", help="seconds on the CPU (the test's mode)")
    args = parser.parse_args()
    cfg = TINY if args.tiny else FULL
    try:
        device = resolve_device("cpu" if args.tiny else "cuda")
    except ConfigError as exc:  # no GPU or a CPU-only torch: the one line naming the fix
        raise SystemExit(f"gpu_check: {exc} (or pass --tiny)") from None
    args.out.mkdir(parents=True, exist_ok=True)
    record(args.out, "environment", {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "cuda": torch.version.cuda, "settings": {k: v for k, v in cfg.items()}, "tiny": args.tiny})
    print(f"device {device} ({'tiny' if args.tiny else 'full'}), torch {torch.__version__}", flush=True)
    for stage in STAGES if args.stage == "all" else (args.stage,):
        started = time.perf_counter()
        record(args.out, f"{stage}_status", "running")
        try:
            result = {"transition": stage_transition, "backward": stage_backward, "circuit": stage_circuit}[stage](
                cfg, device, args.out)
        except Exception as exc:  # one stage failing must not lose the others' figures
            record(args.out, f"{stage}_status", f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            traceback.print_exc()
            continue
        record(args.out, f"{stage}_status", f"done in {time.perf_counter() - started:.1f} s")
        print(f"{stage}: {json.dumps(summary(stage, result), default=float)}", flush=True)


def summary(stage: str, result: dict) -> dict:
    """The few figures of a stage worth a line in the log."""
    if stage == "circuit":
        keep = ("precision", "seconds", "stage_seconds", "peak_gpu_mb", "top_tau_identical", "authors_projected_s")
        return {**{k: result.get(k) for k in keep}, "targets": [r["targets"] for r in result["per_layer"]],
                "folded": [r["folded"] for r in result["per_layer"]]}
    if stage == "backward":
        return result["slots"]
    return {k: v for k, v in result.items() if k.endswith("_s") or "ratio" in k or "identical" in k}


if __name__ == "__main__":
    main()
