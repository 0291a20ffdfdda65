"""The GPU path's figures: one IG transition the authors' way (Captum on the same device) against the
engine in fp32, TF32 and bf16, then a whole ResNet50 class circuit at the paper's settings.

    python benchmarks/gpu_check.py OUTDIR            # on a CUDA GPU (what benchmarks/gpu_check.sh runs)
    python benchmarks/gpu_check.py OUTDIR --tiny     # a few seconds' worth on the CPU, so the script is tested

ResNet50 has random weights (timing does not depend on them; nothing is downloaded). The circuit uses
k 50, tau 16, N 50, the paper's 11 layers from ``fc`` down to ``layer2.3`` and 50 scikit-image photos
with augmentation; it records seconds and targets per layer, and the authors' projected time (Captum
seconds per target, sampled on each transition, times its targets). Writes OUTDIR/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from circuit import _sync, authors_sample, sample_rows, top_sets  # noqa: E402

from neurflow_graph.engine.activations import compute_activations, feature_maps  # noqa: E402
from neurflow_graph.engine.attribution import IntegratedGradients  # noqa: E402
from neurflow_graph.engine.layers import bridge  # noqa: E402
from neurflow_graph.engine.patches import make_patches  # noqa: E402
from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow  # noqa: E402
from neurflow_graph.models.images import skimage_images  # noqa: E402
from neurflow_graph.models.presets import get_preset  # noqa: E402

NAMES = ["chelsea", "coffee", "astronaut", "rocket"]
FULL = dict(input_size=224, images=50, granularities=(1.0, 0.5, 0.25), layers=None, k=50, tau=16, n_steps=50,
            transition_targets=16, sample=2)
TINY = dict(input_size=64, images=3, granularities=(1.0, 0.5), layers=3, k=4, tau=2, n_steps=3,
            transition_targets=2, sample=1)


def precision_flags(mode: str) -> str:
    """Set cuDNN/cuBLAS TF32 for ``mode`` (off for strict fp32) and return the engine's precision."""
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return "fp32" if mode in ("fp32", "tf32") else mode


def transition(model, preset, size, images, device, cfg, rng) -> dict:
    """layer4.1 -> layer4.2 with the most active targets: Captum (sampled, extrapolated) vs the engine's modes."""
    lower, upper = "layer4.1", "layer4.2"
    patches = make_patches(images, cfg["granularities"])
    acts = compute_activations(model, patches, [upper, lower], preset.normalize, size, device=device)
    targets = np.sort(np.argsort(-acts.values[upper].mean(0))[: cfg["transition_targets"]])
    top = acts.top_patches(upper, targets, cfg["k"])
    uniq = np.unique(top)
    maps = torch.zeros((len(patches), *feature_maps(model, patches, lower, uniq[:1], preset.normalize, size,
                                                     device=device).shape[1:]), device=device)
    maps[uniq] = feature_maps(model, patches, lower, uniq, preset.normalize, size, device=device)
    sub = bridge(model, lower, upper, preset.normalize(images[:2]).to(device))  # batch norms folded
    plain = bridge(model, lower, upper, preset.normalize(images[:2]).to(device), fold=False)  # the authors' model
    for p in [*sub.parameters(), *plain.parameters()]:
        p.requires_grad_(False)
    precision_flags("tf32")  # the authors ran with PyTorch's defaults: cuDNN convolutions in TF32
    per_target, *_ = authors_sample(plain, lambda ids: maps[ids], targets, top,
                                    sample_rows(len(targets), cfg["sample"], rng), cfg["n_steps"])
    out = {"lower": lower, "upper": upper, "targets": len(targets), "k": cfg["k"], "n_steps": cfg["n_steps"],
           "authors_s": per_target * len(targets), "authors_sampled": min(cfg["sample"], len(targets))}
    results = {}
    for mode in ("fp32", "tf32", "bf16"):
        engine = IntegratedGradients(n_steps=cfg["n_steps"], precision=precision_flags(mode), device=device)
        engine.attribute(sub, lambda ids: maps[ids], targets, top[:, :1])  # warm-up (cuDNN autotuning)
        _sync(device)
        started = time.perf_counter()
        results[mode] = engine.attribute(sub, lambda ids: maps[ids], targets, top)
        _sync(device)
        out[f"{mode}_s"] = time.perf_counter() - started
        out[f"ratio_{mode}"] = out["authors_s"] / out[f"{mode}_s"]
    base = top_sets(results["fp32"].scores, cfg["tau"])
    for mode in ("tf32", "bf16"):
        out[f"{mode}_top_identical"] = sum(a == b for a, b in zip(top_sets(results[mode].scores, cfg["tau"]), base,
                                                                  strict=True))
    precision_flags("fp32")
    out["batched_backward"] = batched_backward(sub, maps, targets, top, cfg, device)
    return out


def batched_backward(sub, maps, targets, top, cfg, device) -> dict:
    """One IG pass's backward three ways (issue 18, item 4): the engine's loop of one ``autograd.grad`` per
    slot, one call with ``is_grads_batched`` (vmap over the slots' unit grad_outputs) and ``torch.func``
    (``vmap`` over ``vjp``). The pass: 8 of the first target's patches at every step, all targets as slots."""
    from neurflow_graph.engine.layers import neuron_activations

    x = maps[top[0][:8]]
    alphas = torch.linspace(1 / cfg["n_steps"], 1.0, cfg["n_steps"], device=device)
    scaled = (alphas.view(-1, 1, 1, 1, 1) * x.unsqueeze(0)).reshape(-1, *x.shape[1:])
    index = torch.as_tensor(targets, device=device)

    def objective(inp):
        return neuron_activations(sub(inp))[:, index].sum(0)  # R: one sum per slot

    eye = torch.eye(len(targets), device=device)

    def loop():
        inp = scaled.detach().requires_grad_(True)
        out = objective(inp)
        return torch.stack([torch.autograd.grad(out[r], inp, retain_graph=r < len(out) - 1)[0]
                            for r in range(len(out))])

    def grads_batched():
        inp = scaled.detach().requires_grad_(True)
        return torch.autograd.grad(objective(inp), inp, grad_outputs=eye, is_grads_batched=True)[0]

    def func_vmap():
        _, vjp = torch.func.vjp(objective, scaled.detach())
        return torch.func.vmap(vjp)(eye)[0]

    out = {"rows": int(scaled.shape[0]), "slots": len(targets)}
    reference = None
    for name, run in (("loop", loop), ("is_grads_batched", grads_batched), ("torch_func", func_vmap)):
        try:
            seconds = []
            for _ in range(3):  # the first also warms up (cuDNN autotuning); the best of the other two counts
                _sync(device)
                started = time.perf_counter()
                got = run()
                _sync(device)
                seconds.append(time.perf_counter() - started)
        except (RuntimeError, NotImplementedError) as error:  # a batching rule missing for some operator
            out[f"{name}_error"] = str(error).splitlines()[0][:200]
            continue
        out[f"{name}_s"] = min(seconds[1:])
        reference = got if reference is None else reference
        out[f"{name}_max_rel_diff"] = float((got - reference).abs().max() / reference.abs().max().clamp(min=1e-30))
    for name in ("is_grads_batched", "torch_func"):
        if f"{name}_s" in out and "loop_s" in out:
            out[f"{name}_speedup"] = out["loop_s"] / out[f"{name}_s"]
    return out


def whole_circuit(model, preset, size, images, device, cfg, rng) -> dict:
    """The paper's ResNet50 circuit through the pipeline (bf16, the CUDA default), and the authors' projection."""
    layers = preset.layers[: cfg["layers"]] if cfg["layers"] else preset.layers
    with torch.no_grad():
        predicted = model(preset.normalize(images).to(device)).argmax(1).cpu()
    class_index = int(torch.mode(predicted).values)  # random weights: the class the images are predicted as
    spec = ModelSpec("resnet50", model, tuple(layers), size, preset.normalize, provenance={"preset": "resnet50"})
    flow = NeurFlow(progress=False, k=cfg["k"], tau=cfg["tau"], n_steps=cfg["n_steps"],
                    granularities=cfg["granularities"], device=str(device))
    started = time.perf_counter()
    bundle = flow.run(spec, class_index, images, [f"img{i}" for i in range(len(images))])
    _sync(device)
    seconds = time.perf_counter() - started
    precision_flags("tf32")
    per_layer, authors = [], 0.0
    for tr in bundle.circuit.transitions:
        sub = bridge(model, tr.lower, tr.layer, preset.normalize(images[:2]).to(device), fold=False)  # the authors'
        for p in sub.parameters():
            p.requires_grad_(False)
        maps_of = lambda ids, lower=tr.lower: feature_maps(model, bundle.patches, lower, ids,  # noqa: E731
                                                           preset.normalize, size, device=device)
        per_target, *_ = authors_sample(sub, maps_of, tr.targets, tr.top_patches,
                                        sample_rows(len(tr.targets), cfg["sample"], rng), cfg["n_steps"])
        stats = bundle.run_json["layer_stats"][tr.layer]
        per_layer.append({"layer": tr.layer, "lower": tr.lower, "targets": int(len(tr.targets)),
                          "seconds": stats["seconds"], "authors_projected_s": per_target * len(tr.targets),
                          "completeness_error": stats["completeness_error"]})
        authors += per_target * len(tr.targets)
    precision_flags("fp32")
    transitions = sum(row["seconds"] for row in per_layer)
    return {"class": class_index, "images": len(images), "patches": len(bundle.patches), "layers": list(layers),
            "precision": bundle.run_json["params"]["precision"], "seconds": seconds,
            "stage_seconds": bundle.run_json["stage_seconds"], "per_layer": per_layer,
            "transitions_s": transitions, "authors_projected_s": authors, "ratio": authors / transitions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for gpu_check.json")
    parser.add_argument("--tiny", action="store_true", help="a few seconds on the CPU (the test's mode)")
    args = parser.parse_args()
    cfg = TINY if args.tiny else FULL
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    preset = get_preset("resnet50")
    model = preset.build().eval().to(device)
    size = cfg["input_size"]
    images = skimage_images(NAMES, size, augment=-(-cfg["images"] // len(NAMES)) - 1).images[: cfg["images"]]
    figures = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "settings": {k: v for k, v in cfg.items()}}
    print(f"device {figures['device']}, torch {torch.__version__}", flush=True)
    started = time.perf_counter()
    figures["transition"] = transition(model, preset, size, images[:4], device, cfg, rng)
    t = figures["transition"]
    print(f"transition {t['lower']} -> {t['upper']}: {t['targets']} targets x k={t['k']} x N={t['n_steps']}; "
          f"authors' {t['authors_s']:.1f} s (extrapolated from {t['authors_sampled']}); "
          + ", ".join(f"ratio {m}: {t[f'ratio_{m}']:.2f}" for m in ("fp32", "tf32", "bf16"))
          + f"; top-tau identical tf32 {t['tf32_top_identical']}/{t['targets']}, "
          f"bf16 {t['bf16_top_identical']}/{t['targets']}", flush=True)
    b = t["batched_backward"]
    print(f"backward of one pass ({b['rows']} rows, {b['slots']} slots, fp32): per-slot loop "
          f"{b.get('loop_s', float('nan')):.3f} s; " + "; ".join(
              f"{name} {b[f'{name}_s']:.3f} s ({b[f'{name}_speedup']:.2f}x the loop, max rel diff "
              f"{b[f'{name}_max_rel_diff']:.1e})" if f"{name}_speedup" in b
              else f"{name} failed: {b.get(f'{name}_error')}"
              for name in ("is_grads_batched", "torch_func")), flush=True)
    figures["circuit"] = whole_circuit(model, preset, size, images, device, cfg, rng)
    c = figures["circuit"]
    for row in c["per_layer"]:
        print(f"  {row['lower']} -> {row['layer']}: {row['targets']} targets, {row['seconds']:.1f} s "
              f"(authors' projected {row['authors_projected_s']:.1f} s)", flush=True)
    print(f"circuit: {c['images']} images, {c['patches']} patches, {len(c['layers'])} layers, {c['precision']}: "
          f"{c['seconds']:.1f} s for every stage, {c['transitions_s']:.1f} s in the transitions; authors' projected "
          f"{c['authors_projected_s']:.1f} s (Captum only, sampled per transition); ratio {c['ratio']:.2f}")
    figures["total_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(figures, indent=2, default=float))
    print(f"wrote {args.out / 'gpu_check.json'} ({figures['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
