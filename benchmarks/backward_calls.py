"""One real-weights circuit computed twice, per-slot backward loop against the batched backward, side by side.

    python benchmarks/backward_calls.py --quick   # the digits CNN (trained weights), k 50, tau 12, N 50: minutes
    python benchmarks/backward_calls.py --quick --efficientnet   # EfficientNet-Lite0 (ImageNet weights), one photo,
                                                                 # k 50, tau 16, N 8, 4 layers: passes of many slots
    python benchmarks/backward_calls.py --quick --efficientnet --memory-budget-mb 32768
                                          # the same with a budget nearer a GPU's: room for a pass's slots in one call
                                          # (about 10 GB resident on the CPU)
    python benchmarks/backward_calls.py --tiny    # the digits CNN at k 12, tau 4, N 8: what the test runs

The circuit is digit 3 of the trained digits CNN (40 test images), or with ``--efficientnet`` the shipped
EfficientNet-Lite0 recipe's class (ingest/efficientnet-lite0.toml, slower), through the whole
pipeline (``NeurFlow.run``) on the CPU, once with one ``autograd.grad`` per target slot of a pass
(``Tuning(batched_backward=False)``) and once with all slots of a pass in batched vector-Jacobian products
(the default, in slot blocks sized by the memory budget). Prints ``backward calls per circuit: loop N, batched M``,
the largest difference of the attribution scores (relative to the largest score), and both runs' IG seconds;
``--json`` writes the figures. On a GPU (``--device cuda``) the same comparison runs there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from circuit import recipe_images  # noqa: E402  (the shipped recipe's model and images)

from neurflow_graph.engine import attribution  # noqa: E402
from neurflow_graph.engine.pipeline import NeurFlow  # noqa: E402

# Which run goes first (after one untimed warm-up): BACKWARD_CALLS_ORDER=batched puts the batched run first.
ORDER = (True, False) if os.environ.get("BACKWARD_CALLS_ORDER") == "batched" else (False, True)
SETTINGS = {  # digits: k, tau, N, images; efficientnet: k, tau, N, augmented copies of the recipe's photo
    "digits": {"tiny": dict(k=12, tau=4, n_steps=8, images=12), "quick": dict(k=50, tau=12, n_steps=50, images=40)},
    # One photo's 59 patches at k 50: each patch is in nearly every target's concept, so passes carry as many slots
    # as the transition has targets (hundreds at tau 16), the regime of the paper's settings.
    "efficientnet": {"tiny": dict(k=4, tau=2, n_steps=3, augment=0, layers=3),
                     "quick": dict(k=50, tau=16, n_steps=8, augment=0, layers=4)},
}


class CountedGrad:
    """``torch.autograd.grad`` counting its calls while installed (the real function does the work)."""

    def __init__(self):
        self.calls, self._original = 0, torch.autograd.grad

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._original(*args, **kwargs)

    def __enter__(self) -> CountedGrad:
        torch.autograd.grad = self
        return self

    def __exit__(self, *_exc) -> None:
        torch.autograd.grad = self._original


def run_circuit(spec, kept, class_index, params: dict, tuning: attribution.Tuning) -> tuple[dict, int, float]:
    """The bundle's transitions' scores, the backward calls and the IG (circuit stage) seconds of one run."""
    with CountedGrad() as counted:
        started = time.perf_counter()
        bundle = NeurFlow(progress=False, tuning=tuning, **params).run(spec, class_index, kept.images, kept.sha256)
        wall = time.perf_counter() - started
    scores = {tr.layer: tr.edge_score for tr in bundle.circuit.transitions}
    cores = {tr.layer: tr.core for tr in bundle.circuit.transitions}
    return {"scores": scores, "cores": cores, "circuit_s": bundle.meta.stage_seconds["circuit"],
            "wall_s": wall}, counted.calls, wall


def digits_circuit(n_images: int):
    """The digits CNN with its trained weights, and ``n_images`` test images of digit 3 it predicts as 3."""
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.models.images import filter_predicted, image_set_from_tensors
    from neurflow_graph.models.presets import get_preset

    preset = get_preset("digits")
    torch.manual_seed(0)
    model = preset.build(weights="DIGITS_V1")
    images, _ = digits_images(3, split="test")
    kept, _ = filter_predicted(model, image_set_from_tensors(images), 3, preset.normalize)
    return preset.model_spec(model, weights="DIGITS_V1"), kept.subset(range(min(n_images, len(kept)))), 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    for name in ("tiny", "quick"):
        size.add_argument(f"--{name}", action="store_const", const=name, dest="size")
    parser.add_argument("--efficientnet", action="store_true", help="EfficientNet-Lite0 instead of the digits CNN")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--call-overhead-rows", type=int, default=None,
                        help="what one forward or backward call costs in rows when chunks are sized (both runs); "
                             "default: the engine's for the device (4 on a CPU; on a GPU a call counts as a full pass)")
    parser.add_argument("--memory-budget-mb", type=float, default=None,
                        help="the runs' memory budget (default: the device's, 1024 MB on a CPU); a batched call "
                             "takes as many slots as the budget leaves room for beside the pass")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    setting = SETTINGS["efficientnet" if args.efficientnet else "digits"][args.size or "quick"]
    k, tau, n_steps = setting["k"], setting["tau"], setting["n_steps"]
    if not args.efficientnet:
        name, spec, kept, class_index = "digits (trained weights)", *digits_circuit(setting["images"])
    else:
        recipe, prep, kept, _dropped = recipe_images(setting["augment"], k=k, tau=tau, n_steps=n_steps)
        name, class_index, spec = "efficientnet-lite0 (ImageNet weights)", prep.class_names.index(recipe.classes[0]), \
            prep.model_spec()
        spec = dataclasses.replace(spec, layers=tuple(spec.layers[: setting["layers"]]))
        kept = kept.subset(range(1))
    params = dict(k=k, tau=tau, n_steps=n_steps, seed=0, device=args.device, precision="fp32",
                  memory_budget_mb=args.memory_budget_mb)
    overhead = args.call_overhead_rows or (attribution.CPU_PASS_OVERHEAD_ROWS if args.device.startswith("cpu")
                                           else "a pass's")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; {name}, class "
          f"{class_index}, {len(kept)} images, layers {list(spec.layers)}, k={k} tau={tau} N={n_steps}; a call "
          f"costs {overhead} rows when chunks are sized; budget {args.memory_budget_mb or 'default'} MB", flush=True)
    tunings = {b: attribution.Tuning(batched_backward=b, call_overhead_rows=args.call_overhead_rows) for b in ORDER}
    runs = {}
    for batched in ORDER:  # one untimed warm-up first: the first run pays one-off costs
        if not runs:
            run_circuit(spec, kept, class_index, {**params, "k": min(k, 4), "n_steps": 2}, tunings[batched])
        runs[batched] = run_circuit(spec, kept, class_index, params, tunings[batched])
    (loop, loop_calls, loop_s), (batch, batch_calls, batch_s) = runs[False], runs[True]
    scale = max(float(np.abs(s).max()) for s in loop["scores"].values())
    diff = max(float(np.abs(batch["scores"][layer] - s).max()) for layer, s in loop["scores"].items()) / scale
    same_cores = all(np.array_equal(batch["cores"][layer], c) for layer, c in loop["cores"].items())
    print(f"backward calls per circuit: loop {loop_calls}, batched {batch_calls} "
          f"({loop_calls / max(batch_calls, 1):.1f}x fewer)")
    print(f"largest difference: {diff:.2e} of the largest score; core neurons identical: "
          f"{'yes' if same_cores else 'no'}")
    print(f"IG stage seconds: loop {loop['circuit_s']:.2f} s, batched {batch['circuit_s']:.2f} s "
          f"(batched/loop {batch['circuit_s'] / loop['circuit_s']:.2f}); whole runs {loop_s:.2f} s, {batch_s:.2f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "device": args.device, "k": k, "tau": tau, "n_steps": n_steps, "loop_calls": loop_calls,
            "batched_calls": batch_calls, "max_rel_diff": diff, "same_cores": same_cores,
            "loop_ig_s": loop["circuit_s"], "batched_ig_s": batch["circuit_s"], "loop_s": loop_s,
            "batched_s": batch_s}, indent=2))


if __name__ == "__main__":
    main()
