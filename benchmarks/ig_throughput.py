"""One layer transition timed the authors' way (Captum, one call per target, 4 patches per call) and
with the engine's modes, side by side in one run.

    python benchmarks/ig_throughput.py            # ResNet50 layer4.1 -> layer4.2 and digits conv2 -> conv3,
                                                  # 16 targets x k=50 patches x N=50 steps
    python benchmarks/ig_throughput.py --quick    # the same with 4 targets x 8 patches (under a minute)

Prints, per case, one ``ratio <mode>: X`` line per engine mode (authors' seconds / engine seconds),
the largest relative difference of the scores from the authors' and whether every target's top-tau
set is identical to theirs. ``adaptive`` picks the step count whose completeness error is no looser
than the error the authors' setting reaches (both printed). The authors' way runs twice: with glibc's
malloc settings and keeping freed memory as the engine does on a CPU; the ratios are against the faster
of the two, so that they measure the engine's computation, not the allocator (benchmarks/allocator.py
measures what glibc's settings cost a fresh process).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIG

from neurflow_graph.engine import memory
from neurflow_graph.engine.activations import compute_activations, feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients
from neurflow_graph.engine.layers import bridge, neuron_activations
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.models.images import skimage_images
from neurflow_graph.models.presets import get_preset


class _Means(torch.nn.Module):
    """The authors' wrapper: the sub-network's output reduced to one value per neuron."""

    def __init__(self, sub: torch.nn.Module):
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return neuron_activations(self.sub(x))


@contextmanager
def allocator(kept: bool) -> Iterator[None]:
    """glibc keeping freed memory as the engine does on a CPU (``kept``), or with its own settings, the engine's
    calls inside included (on a CUDA device both are the same)."""
    if kept:
        with memory.keep_freed_memory():
            yield
        return
    with memory.glibc_defaults():
        yield


def authors_way(sub, maps, targets, patch_ids, n_steps, per_call=4):
    """Captum IntegratedGradients, one call per target and ``per_call`` patches (their run script)."""
    ig = CaptumIG(_Means(sub))
    scores = np.zeros((*patch_ids.shape, maps.shape[1]), dtype=np.float32)
    delta = np.zeros(patch_ids.shape)
    for t, target in enumerate(targets):
        for i0 in range(0, patch_ids.shape[1], per_call):
            x = maps[patch_ids[t, i0 : i0 + per_call]]
            attr, d = ig.attribute(x, baselines=x * 0, target=int(target), n_steps=n_steps,
                                   return_convergence_delta=True)
            scores[t, i0 : i0 + per_call] = attr.mean(dim=(2, 3)).detach().numpy()
            delta[t, i0 : i0 + per_call] = d.detach().numpy()
    return scores, delta


def output_diff(sub, maps, targets, patch_ids):
    with torch.no_grad():
        y1 = neuron_activations(sub(maps))
        y0 = neuron_activations(sub(maps[:1] * 0))[0]
    return np.stack([(y1[patch_ids[t], tgt] - y0[tgt]).numpy() for t, tgt in enumerate(targets)])


def case(name, model, preset, images, lower, upper, n_targets, k, n_steps, tau, modes):
    patches = make_patches(images)
    acts = compute_activations(model, patches, [upper, lower], preset.normalize, preset.input_size)
    # Targets as the circuit would pick them: the neurons most active on the class images.
    targets = np.sort(np.argsort(-acts.values[upper].mean(0))[:n_targets])
    patch_ids = acts.top_patches(upper, targets, k)
    uniq = np.unique(patch_ids)
    maps = torch.zeros((len(patches), *feature_maps(model, patches, lower, uniq[:1], preset.normalize,
                                                     preset.input_size).shape[1:]))
    maps[uniq] = feature_maps(model, patches, lower, uniq, preset.normalize, preset.input_size)
    sub = bridge(model, lower, upper, preset.normalize(images[:2]))  # the engine's, batch norms folded
    plain = bridge(model, lower, upper, preset.normalize(images[:2]), fold=False)  # the authors' model as it is
    for p in [*sub.parameters(), *plain.parameters()]:
        p.requires_grad_(False)
    print(f"\n== {name}: {lower} -> {upper}, {len(targets)} targets x k={k} patches "
          f"({len(uniq)} distinct) x N={n_steps} steps, tau={tau}", flush=True)

    timed = {}
    for kept in (False, True):
        with allocator(kept):
            started = time.perf_counter()
            ref, ref_delta = authors_way(plain, maps, targets, patch_ids, n_steps)
            timed[kept] = time.perf_counter() - started
    authors_seconds = min(timed.values())
    diff = output_diff(plain, maps, targets, patch_ids)
    authors_error = float(np.abs(ref_delta).sum() / np.abs(diff).sum())
    ref_top = [set(np.argsort(-np.abs(ref[t]).mean(0))[:tau]) for t in range(len(targets))]
    print(f"authors' way (Captum, 1 call/target, 4 patches/call): {timed[True]:.2f} s keeping freed memory as the "
          f"engine does, {timed[False]:.2f} s with glibc's settings; completeness error {authors_error:.2e}",
          flush=True)

    settings = {
        "fp32": dict(n_steps=n_steps, precision="fp32"),
        "bf16": dict(n_steps=n_steps, precision="bf16"),
        "adaptive": dict(n_steps="auto", tolerance=authors_error, precision="fp32"),
    }
    for mode in modes:
        ig = IntegratedGradients(**settings[mode])
        started = time.perf_counter()
        result = ig.attribute(sub, lambda ids: maps[ids], targets, patch_ids)
        seconds = time.perf_counter() - started
        rel = float(np.abs(result.scores - ref).max() / np.abs(ref).max())
        top = [set(np.argsort(-np.abs(result.scores[t]).mean(0))[:tau]) for t in range(len(targets))]
        same = sum(a == b for a, b in zip(top, ref_top, strict=True))
        print(f"ratio {mode}: {authors_seconds / seconds:.2f}   ({seconds:.2f} s, N={result.n_steps}, "
              f"max rel diff {rel:.1e}, top-{tau} identical for {same}/{len(targets)} targets, "
              f"completeness error {result.completeness_error:.2e} vs authors' {authors_error:.2e})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 targets x 8 patches: under a minute")
    parser.add_argument("--modes", default="fp32,bf16,adaptive", help="engine modes to time")
    parser.add_argument("--cases", default="resnet50,digits", help="which transitions to time")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(torch.get_num_threads())
    n_targets, k = (4, 8) if args.quick else (16, 50)
    modes = args.modes.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    if "resnet50" in args.cases:
        preset = get_preset("resnet50")
        model = preset.build().eval()  # random weights are fine for timing
        images = skimage_images(["chelsea", "coffee", "astronaut", "rocket"], 224, augment=1).images
        case("resnet50 (random weights)", model, preset, images, "layer4.1", "layer4.2", n_targets, k, 50,
             min(16, 2048), modes)
    if "digits" in args.cases:
        from neurflow_graph.models.digits import digits_images

        preset = get_preset("digits")
        model = preset.build(weights="DIGITS_V1").eval()
        images, _ = digits_images(3, split="test")
        case("digits", model, preset, images[:20], "conv2", "conv3", n_targets, k, 50, 16, modes)


if __name__ == "__main__":
    main()
