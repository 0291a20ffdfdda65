"""What measuring faithfulness at ingest costs, next to the circuit's own compute, in one run.

    python benchmarks/faithfulness.py --quick   # the EfficientNet-Lite0 recipe scaled down (k 8, tau 4, N 8,
                                                # 3 of its photos): minutes on 2 idle cores
    python benchmarks/faithfulness.py           # the EfficientNet-Lite0 recipe at its settings (k 50, tau 8,
                                                # N 20, 6 photos), then the ResNet50 proxy (random weights) at the
                                                # paper's k 50, tau 16, N 50 over its top 3 layers: about 10
                                                # minutes on 2 cores
    python benchmarks/faithfulness.py --tiny    # the digits recipe, seconds (what the test runs)

Each case computes one class's circuit through the engine (``stage_seconds``: patches, activations, circuit,
groups) and then the faithfulness stage exactly as ``ingest`` runs it (``jobs.measure_faithfulness_stage``, or
``measure_faithfulness`` on the proxy), at the default settings (per layer, 10 random sets). Prints
``faithfulness cost: X% of the circuit`` per case and whether it is within the 10% bound; ``--json`` writes the
figures. Faithfulness costs about (2 x sets + 3) forward passes of the model above each layer per image, whatever
k, tau and N are, so a scaled-down circuit (``--quick``) gives a larger share than the recipe's own settings.

The ResNet50 proxy stops at ``layer4.1``: each layer further down adds a transition of up to tau x (targets above)
targets, k x N integrated-gradient rows each (``layer4.1 -> layer4.0`` alone is about 640 thousand rows of 437 MFLOP,
hours on 2 cores), against a constant number of forward passes for its faithfulness, so the share measured on the
top layers bounds the share of a deeper circuit from above.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.params import FaithfulnessSettings
from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow
from neurflow_graph.evaluation.faithfulness import measure_faithfulness
from neurflow_graph.evaluation.subject import Subject
from neurflow_graph.jobs import class_job, measure_faithfulness_stage
from neurflow_graph.models.images import skimage_images
from neurflow_graph.models.presets import get_preset
from neurflow_graph.recipes import load_recipe, prepare_model

ROOT = Path(__file__).resolve().parents[1]
BOUND = 0.10
CASES = {
    "tiny": [("digits", ROOT / "ingest" / "digits.toml", {"k": 10, "tau": 3, "n_steps": 8, "max_images": 6}, None)],
    "quick": [("efficientnet-lite0 (recipe scaled down)", ROOT / "ingest" / "efficientnet-lite0.toml",
               {"k": 8, "tau": 4, "n_steps": 8}, 2)],
    "full": [("efficientnet-lite0 (recipe settings)", ROOT / "ingest" / "efficientnet-lite0.toml", {}, None)],
}
RESNET50_PAPER = {"k": 50, "tau": 16, "n_steps": 50, "images": 8, "layers": ("fc", "layer4.2", "layer4.1")}


def recipe_case(name: str, path: Path, overrides: dict, augment: int | None, device: str) -> dict:
    """One class of a recipe through ``ingest``'s own steps: the engine, then the faithfulness stage."""
    recipe = load_recipe(path).with_overrides(device=device, **overrides)
    recipe = dataclasses.replace(recipe, faithfulness=FaithfulnessSettings())
    if augment is not None:
        recipe = dataclasses.replace(recipe, images=dataclasses.replace(recipe.images, augment=augment))
    prepared = prepare_model(recipe)
    job = class_job(prepared, recipe.classes[0], progress=False)
    bundle = measure_faithfulness_stage(job, job.run())
    return figures(name, bundle.meta, len(job.images))


def resnet50_case(device: str) -> dict:
    """The ResNet50 proxy of the speed benchmarks (random weights) at the paper's k, tau and N, top 3 layers."""
    cfg = RESNET50_PAPER
    torch.manual_seed(0)
    preset = get_preset("resnet50")
    model = preset.build().eval()
    images = skimage_images(("chelsea", "astronaut", "coffee", "rocket"), preset.input_size, augment=1).images
    images = images[: cfg["images"]]
    with torch.no_grad():
        class_index = int(torch.mode(model(preset.normalize(images)).argmax(1)).values)
    spec = ModelSpec("resnet50", model, cfg["layers"], preset.input_size, preset.normalize,
                     provenance={"preset": "resnet50"})
    flow = NeurFlow(progress=False, k=cfg["k"], tau=cfg["tau"], n_steps=cfg["n_steps"], device=device)
    bundle = flow.run(spec, class_index, images, [f"img{i}" for i in range(len(images))])
    subject = Subject(spec=spec, meta=bundle.meta, patches=bundle.patches, circuit=bundle.circuit,
                      device=torch.device(device))
    started = time.perf_counter()
    measured = measure_faithfulness(subject, FaithfulnessSettings(), flow.params.memory_budget_mb)
    meta = bundle.meta.with_faithfulness(measured.record(), time.perf_counter() - started)
    return figures("resnet50 proxy (random weights, paper k tau N, top 3 layers)", meta, len(images))


def figures(name: str, meta: RunMeta, n_images: int) -> dict:
    stages = dict(meta.stage_seconds)
    faith = stages.pop("faithfulness")
    circuit = sum(stages.values())
    share = faith / circuit
    print(f"{name}: {n_images} images, {len(meta.layers)} layers, k {meta.params.k}, tau "
          f"{meta.params.tau}, N {meta.params.n_steps}; circuit {circuit:.1f} s "
          f"({', '.join(f'{k} {v:.1f}' for k, v in stages.items())}), faithfulness {faith:.2f} s", flush=True)
    print(f"faithfulness cost: {100 * share:.1f}% of the circuit ({'within' if share <= BOUND else 'ABOVE'} the "
          f"{100 * BOUND:.0f}% bound); verdict: {meta.faithfulness.verdict}", flush=True)
    return {"case": name, "images": n_images, "circuit_s": circuit, "stage_seconds": stages, "faithfulness_s": faith,
            "share": share, "within_bound": share <= BOUND, "verdict": meta.faithfulness.verdict,
            "layers": list(meta.faithfulness.layers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the EfficientNet-Lite0 recipe scaled down (minutes)")
    mode.add_argument("--tiny", action="store_true", help="the digits recipe (seconds; the test's mode)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    which = "tiny" if args.tiny else "quick" if args.quick else "full"
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {args.device}", flush=True)
    out = [recipe_case(name, path, overrides, augment, args.device) for name, path, overrides, augment in CASES[which]]
    if which == "full":
        out.append(resnet50_case(args.device))
    if args.json:
        args.json.write_text(json.dumps({"mode": which, "cases": out}, indent=2, default=str))


if __name__ == "__main__":
    main()
