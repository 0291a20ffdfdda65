"""What hashing a model's weights for its run id costs, next to the forward passes of one image's patches.

    python benchmarks/weights_digest.py            # ResNet50 and EfficientNet-Lite0 (random weights)
    python benchmarks/weights_digest.py --quick    # ResNet50 only

Prints, per model, the parameter count, the seconds of ``weights_sha256`` (once per model and run) and
of one forward pass over the 59 patches of one 224-px image (the activation stage does that per image),
and their ratio: the digest costs about as much as this many images' forward passes.
"""

from __future__ import annotations

import argparse
import time

import torch

from neurflow_graph.engine.pipeline import weights_sha256
from neurflow_graph.models.presets import get_preset


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet50 only.")
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in ("resnet50",) if args.quick else ("resnet50", "efficientnet-lite0"):
        preset = get_preset(name)
        model = preset.build(weights=None).eval()
        n_params = sum(t.numel() for t in model.state_dict().values())
        digest = _best(lambda m=model: weights_sha256(m))
        patches = preset.normalize(torch.rand(59, 3, preset.input_size, preset.input_size))
        with torch.no_grad():
            forward = _best(lambda m=model, x=patches: m(x), repeats=1)
        print(f"{name}: {n_params / 1e6:.1f} M values, digest {digest:.3f} s, one image's 59 patches forward "
              f"{forward:.3f} s, ratio digest/forward: {digest / forward:.4f}")


if __name__ == "__main__":
    main()
