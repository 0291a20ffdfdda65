"""What glibc's malloc settings cost on a CPU: the authors' Captum, a plain forward and the engine's activation
stage, each in a fresh process with glibc's default settings and keeping freed memory as the engine does.

By default glibc maps every block over its mmap threshold (dynamic, at most 32 MB) afresh and unmaps it when
freed, so a loop that allocates the same large tensors again page-faults them in every time; on a virtual
machine each fault is expensive. The engine keeps freed blocks inside its stages (``keep_freed_memory``);
this benchmark measures what that is worth, and so how much of a comparison with the authors' script as it
runs is the allocator rather than the computation.

    python benchmarks/allocator.py            # EfficientNet-Lite0 ImageNet weights, the recipe's photo with 5
                                              # augmented copies, _blocks.14 -> _blocks.15, 3 targets, k 50, N 50
    python benchmarks/allocator.py --tiny     # seconds: what the test runs

Prints, per stage, wall, user and system seconds and minor page faults of each setting (the faster of
``--rounds`` fresh processes, settings interleaved) and ``ratio <stage>: X`` (glibc's seconds / kept seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {"paper": dict(targets=3, k=50, n_steps=50, augment=5, granularities=None),
            "tiny": dict(targets=1, k=4, n_steps=3, augment=1, granularities=(1.0, 0.5))}
STAGES = ("authors' Captum", "plain forward", "engine activations")


def child(kept: bool, setting: dict) -> dict:
    """Measure the three stages in this process (called through a fresh interpreter)."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from circuit import plain_forward, recipe_images
    from ig_throughput import authors_way

    from neurflow_graph.engine import memory
    from neurflow_graph.engine.activations import compute_activations, feature_maps
    from neurflow_graph.engine.layers import bridge
    from neurflow_graph.engine.patches import make_patches

    with memory.glibc_defaults():  # the set-up leaves glibc as a fresh process has it
        recipe, prep, images, _dropped = recipe_images(setting["augment"])
        model, normalize, size, batch = prep.model.eval(), prep.preset.normalize, prep.preset.input_size, 64
        patches = make_patches(images.images.float(), setting["granularities"] or recipe.params.granularities,
                               recipe.params.stride_ratio)
        lower, upper = "_blocks.14", "_blocks.15"
        acts = compute_activations(model, patches, [upper], normalize, size, batch)
        targets = np.sort(np.argsort(-acts.values[upper].mean(0))[: setting["targets"]])
        top = acts.top_patches(upper, targets, setting["k"])
        uniq = np.unique(top)
        maps = feature_maps(model, patches, lower, uniq, normalize, size, batch)  # row i: patch uniq[i]
        sub = bridge(model, lower, upper, normalize(images.images[:2].float()), fold=False)  # the authors' model
        for p in sub.parameters():
            p.requires_grad_(False)

        def authors() -> None:  # their script: one call per target, 4 patches per call
            authors_way(sub, maps, targets, np.searchsorted(uniq, top), setting["n_steps"])

        stages = {STAGES[0]: authors, STAGES[1]: lambda: plain_forward(model, patches, normalize, size, batch),
                  STAGES[2]: lambda: compute_activations(model, patches, list(recipe.layers), normalize, size, batch)}
    out = {}
    for name, run in stages.items():  # the engine's stage keeps freed memory itself, as shipped
        if not kept:
            setting_for = memory.glibc_defaults()
        else:
            setting_for = memory.keep_freed_memory() if name != STAGES[2] else contextlib.nullcontext()
        with setting_for:
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            run()
            r1 = resource.getrusage(resource.RUSAGE_SELF)
        out[name] = {"wall_s": time.perf_counter() - t0, "user_s": r1.ru_utime - r0.ru_utime,
                     "sys_s": r1.ru_stime - r0.ru_stime, "minor_faults": r1.ru_minflt - r0.ru_minflt}
    out["patches"], out["targets"] = len(patches), len(targets)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="1 target, k 4, N 3, 1 augmented copy: seconds")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per setting, interleaved")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setting = SETTINGS["tiny" if args.tiny else "paper"]
    if args.child:
        print(json.dumps(child(args.child == "kept", setting)))
        return
    runs: dict[str, list[dict]] = {"glibc": [], "kept": []}
    for _round in range(args.rounds):
        for name in runs:
            cmd = [sys.executable, __file__, "--child", name] + (["--tiny"] if args.tiny else [])
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = runs["glibc"][0]
    print(f"efficientnet-lite0 (ImageNet weights), {first['patches']} patches, {first['targets']} targets x "
          f"k={setting['k']} x N={setting['n_steps']} on _blocks.14 -> _blocks.15; {args.rounds} fresh processes per "
          "setting, the faster shown")
    figures: dict = {"setting": setting, "rounds": args.rounds, "stages": {}}
    for stage in STAGES:
        best = {name: min((r[stage] for r in rs), key=lambda m: m["wall_s"]) for name, rs in runs.items()}
        for name, m in best.items():
            print(f"  {stage:19s} {name:5s}: {m['wall_s']:6.2f} s wall, user {m['user_s']:6.2f} s, sys "
                  f"{m['sys_s']:6.2f} s, {m['minor_faults'] / 1e6:5.2f} M minor faults")
        ratio = best["glibc"]["wall_s"] / best["kept"]["wall_s"]
        print(f"ratio {stage}: {ratio:.2f}   (glibc's default settings / keeping freed memory)")
        figures["stages"][stage] = {**best, "ratio": ratio}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
