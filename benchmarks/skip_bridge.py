"""The sub-network from a ViT block's MLP units: the torch.fx slice with the skip path as side input vs the replay.

    python benchmarks/skip_bridge.py [--rows 448] [--repeats 5]   # the trained digits ViT (cached on first use)

Both hold the block's skip path at each input's own value and give the same outputs (checked first); the
replay reruns the whole model from the input for every row (``layers._ReplayBridge`` with ``model_input``),
the slice only the part above the MLP units. One IG pass: forward of ``rows`` rows and the backward of one
target with respect to the MLP units. Prints seconds per pass of each, measured alternately, and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from neurflow_graph.engine.layers import _ReplayBridge, bridge, capture
from neurflow_graph.engine.layouts import resolve_layouts
from neurflow_graph.models.digits import digits_images
from neurflow_graph.models.presets import get_preset

LOWER, UPPER = "encoder.layers.encoder_layer_1.mlp.1", "encoder.layers.encoder_layer_2.mlp.1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=448)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    preset = get_preset("digits-vit")
    model = preset.build(weights="DIGITS_VIT_V1")
    for param in model.parameters():
        param.requires_grad_(False)
    images = preset.normalize(digits_images(split="test")[0][: args.rows])
    resolve_layouts(model, [UPPER, LOWER], images[:2], preset.layouts_of((UPPER, LOWER)))
    skip = bridge(model, LOWER, UPPER, images[:2])
    replay = _ReplayBridge(model, LOWER, UPPER, images.shape[1:])
    with torch.no_grad(), capture(model, [LOWER]) as seen:
        model(images)
    hidden = seen[LOWER]
    _low, sides = skip.sides(images)
    with torch.no_grad():
        torch.testing.assert_close(skip.core(hidden, *sides), replay(hidden, model_input=images), rtol=1e-4, atol=1e-5)

    def slice_pass(x):
        return skip.core(x, *sides)

    def replay_pass(x):
        return replay(x, model_input=images)

    timings: dict[str, list[float]] = {"slice": [], "replay": []}
    for _ in range(args.repeats):
        for name, run in (("slice", slice_pass), ("replay", replay_pass)):
            x = (0.5 * hidden).clone().requires_grad_(True)
            started = time.perf_counter()
            out = run(x)
            (grad,) = torch.autograd.grad(out[:, 1:, 3].mean(), x)
            timings[name].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in timings.items()}
    print(f"{args.rows} rows, {LOWER} -> {UPPER}, best of {args.repeats}")
    print(f"slice (skip path as side input): {best['slice']:.4f} s/pass")
    print(f"replay (whole model per row):    {best['replay']:.4f} s/pass")
    print(f"ratio replay/slice: {best['replay'] / best['slice']:.2f}")


if __name__ == "__main__":
    main()
