"""Floating-point operations of one IG pass per bridge of each preset (the cost model of docs/performance.md).

    python benchmarks/bridge_flops.py [preset ...]    # default: every preset; random weights, nothing downloaded

One pass is one (patch, step) row: the forward of the sub-network between two listed layers and the
backward of one target with respect to the lower layer's maps (weights frozen). Counted by
torch.utils.flop_counter, so it is the model's arithmetic, not a measured speed.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from neurflow_graph.engine.layers import bridge, capture, neuron_activations
from neurflow_graph.models.presets import get_preset, preset_names


def bridge_flops(name: str) -> list[tuple[str, str, int, int]]:
    """(lower, upper, forward FLOPs, backward FLOPs) per row for each consecutive pair of the preset's layers."""
    preset = get_preset(name)
    model = preset.build().eval()
    example = torch.rand(2, preset.in_channels, preset.input_size, preset.input_size)
    with torch.no_grad(), capture(model, preset.layers) as seen:
        model(example)
    rows = []
    for upper, lower in zip(preset.layers[:-1], preset.layers[1:], strict=True):
        sub = bridge(model, lower, upper, example)
        for p in sub.parameters():
            p.requires_grad_(False)
        x = seen[lower][:1].clone().requires_grad_(True)
        with FlopCounterMode(display=False) as fwd:
            y = neuron_activations(sub(x))[0, 0]
        with FlopCounterMode(display=False) as bwd:
            y.backward()
        rows.append((lower, upper, fwd.get_total_flops(), bwd.get_total_flops()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", default=preset_names())
    for name in parser.parse_args().presets:
        print(f"\n{name}: lower -> upper, forward / backward MFLOP per (patch, step) row")
        for lower, upper, f, b in bridge_flops(name):
            print(f"  {lower} -> {upper}: {f / 1e6:.1f} / {b / 1e6:.1f}")


if __name__ == "__main__":
    main()
