"""One real-weights IG transition, engine variants side by side, each in a fresh process: seconds, peak memory.

EfficientNet-Lite0 (ImageNet weights), the shipped recipe's photo with 2 augmented copies, `_blocks.13 ->
_blocks.14`, the 40 most active targets with k 16 and N 8 (640 pairs sharing 135 patches). For each variant
and memory budget it prints wall and CPU seconds, the peak of live tensors (counted exactly, torch dispatch)
and the growth of the process's peak RSS over its size before the activation stage, the activation stage's
own growth, and `ratio chunks sized vs equal: X` (seconds of equal chunks / sized chunks, rounds interleaved).

    python benchmarks/ig_memory.py [--budgets 256,1024] [--rounds 2] [--threads 1]
    python benchmarks/ig_memory.py --tiny    # 4 targets, k 4, N 2, one budget and round: what the test runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {"sized chunks": {}, "equal chunks": {"partition": False}}  # ``attribution.Tuning`` fields


def child(variant: str, budget: float, setting: tuple[int, int, int] = (40, 16, 8)) -> dict:
    """Measure one variant in this process (called through a fresh interpreter)."""
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from circuit import recipe_images

    from neurflow_graph.engine import attribution
    from neurflow_graph.engine.activations import compute_activations, feature_maps
    from neurflow_graph.engine.layers import bridge
    from neurflow_graph.engine.memory import peak_live_bytes
    from neurflow_graph.engine.patches import make_patches

    recipe, prep, kept, _dropped = recipe_images(2)
    patches = make_patches(kept.images.float(), recipe.params.granularities, recipe.params.stride_ratio)
    model, norm, size = prep.model.eval(), prep.preset.normalize, prep.preset.input_size
    lower, upper = "_blocks.13", "_blocks.14"
    before = _status("VmRSS:")
    _reset_peak()
    acts = compute_activations(model, patches, [upper, lower], norm, size, 64, memory_budget_mb=budget)
    acts_growth = _status("VmHWM:") - before
    n_targets, k, n_steps = setting
    targets = np.argsort(-acts.values[upper].max(axis=0))[:n_targets]
    top = acts.top_patches(upper, targets, k)
    sub = bridge(model, lower, upper, norm(kept.images[:2].float()))
    for p in sub.parameters():
        p.requires_grad_(False)

    def inputs(ids):
        return feature_maps(model, patches, lower, ids, norm, size, 64)

    engine = attribution.IntegratedGradients(n_steps=n_steps, memory_budget_mb=budget,
                                             tuning=attribution.Tuning(**VARIANTS[variant]))
    _reset_peak()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    engine.attribute(sub, inputs, targets, top)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    growth = _status("VmHWM:") - before
    _, live = peak_live_bytes(lambda: engine.attribute(sub, inputs, targets, top))  # untimed: dispatch costs
    return {"wall_s": wall, "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
            "live_peak_mb": live / 2**20, "ig_rss_growth_mb": growth, "activations_rss_growth_mb": acts_growth,
            "patches": int(len(np.unique(top))), "pairs": int(top.size)}


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (Linux)
        f.write("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="256,1024")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: robust to a busy second core)")
    parser.add_argument("--tiny", action="store_true", help="4 targets, k 4, N 2, budget 256 MB, one round")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]), tuple(int(x) for x in args.child[2].split(",")))))
        return
    size = "4,4,2" if args.tiny else "40,16,8"
    if args.tiny:
        args.budgets, args.rounds = "256", 1
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    results: dict[tuple[str, float], list[dict]] = {}
    for budget in (float(b) for b in args.budgets.split(",")):
        for r in range(args.rounds):
            names = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
            for name in names:
                command = [sys.executable, __file__, "--child", name, str(budget), size]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
                results.setdefault((name, budget), []).append(json.loads(out.strip().splitlines()[-1]))
    print(f"{args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f}; medians of {args.rounds} rounds")
    for (name, budget), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name:>13}, budget {budget:.0f} MB: {med['wall_s']:.2f} s (user {med['user_s']:.2f}, sys "
              f"{med['sys_s']:.2f}) for {med['pairs']:.0f} pairs over {med['patches']:.0f} patches; live tensors "
              f"{med['live_peak_mb']:.0f} MB; RSS growth: IG {med['ig_rss_growth_mb']:.0f} MB, activations "
              f"{med['activations_rss_growth_mb']:.0f} MB")
    for budget in (float(b) for b in args.budgets.split(",")):
        sized = statistics.median(r["wall_s"] for r in results[("sized chunks", budget)])
        equal = statistics.median(r["wall_s"] for r in results[("equal chunks", budget)])
        print(f"ratio chunks sized vs equal (budget {budget:.0f} MB): {equal / sized:.2f}")


if __name__ == "__main__":
    main()
