"""Latency of the query library on an embedded store holding 20 real runs: digits 0-9 at two settings of tau.

Each run is a real NeurFlow run of the digits CNN (12 images per class, k=20, n_steps=16; tau 4 and 6, a few
seconds each on a CPU), cached under --bundles so a second invocation only ingests and measures. The runs go
into a fresh database of the embedded ArcadeDB server; then every timed query runs --repeats times after two
warm-up calls, through the same helpers the CLI uses (driver round trip included), and the median and the
slowest are printed. Target: each under 200 ms. `--quick`: digits 0-3 at one setting, 5 repeats.

    python benchmarks/queries.py [--quick] [--repeats N] [--bundles DIR] [--data-dir DIR]

`--classes N` instead measures the cross-class queries on a store shaped like N ResNet50 class circuits (11
layers from fc down to layer2.3, about 10 neuron groups per layer, member neurons drawn with a Zipf skew so
that some neurons serve many classes; no patches), each written through the real writer, with the time per
class; it prints `<query>_ms: N` lines and the store's size on disk.

    python benchmarks/queries.py --classes 1000 [--data-dir DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from neurflow_graph.query import (
    fetch_bias_paths,
    fetch_class_circuit,
    fetch_classes,
    fetch_neuron_roles,
    fetch_run_comparison,
    fetch_shared_groups,
    fetch_shared_neurons,
    run_query,
)
from neurflow_graph.store import connect, server, write_run_graph
from neurflow_graph.store.shares import SHARES_FLOOR

TARGET_MS = 200.0


def _reusable(bundle: Path) -> bool:
    """Whether a bundle written earlier reads with this release (an older bundle_format is computed again)."""
    from neurflow_graph.bundle.files import read_run_meta
    from neurflow_graph.errors import ArtifactError

    try:
        read_run_meta(bundle / "run.json")
    except ArtifactError:
        return False
    return True


def make_bundles(folder: Path, classes: list[int], taus: list[int], images: int = 12) -> list[Path]:
    """Real runs of the digits CNN, one per (class, tau), written once under `folder` and reused."""
    from neurflow_graph.bundle.files import write_bundle as write_bundle_dir
    from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.models.images import filter_predicted, image_set_from_tensors
    from neurflow_graph.models.presets import get_preset

    preset = get_preset("digits")
    model = None
    out = []
    for tau in taus:
        for c in classes:
            target = folder / f"digits-{c}-tau{tau}"
            if not _reusable(target):
                if model is None:
                    torch.manual_seed(0)
                    model = preset.build(weights="DIGITS_V1")
                    spec = ModelSpec("digits", model, preset.layers, preset.input_size, preset.normalize,
                                     provenance={"preset": "digits", "weights": "DIGITS_V1"})
                started = time.perf_counter()
                tensors, _ = digits_images(c, split="test")
                kept, _ = filter_predicted(model, image_set_from_tensors(tensors), c, preset.normalize)
                kept = kept.subset(range(min(images, len(kept))))
                bundle = NeurFlow(progress=False, k=20, tau=tau, n_steps=16, seed=0, device="cpu").run(
                    spec, c, kept.images, kept.sha256, str(c))
                write_bundle_dir(bundle, target)
                print(f"  run digit {c} tau {tau}: {time.perf_counter() - started:.1f} s", flush=True)
            out.append(target)
    return out


RESNET50_LAYERS = ("fc", "layer4.2", "layer4.1", "layer4.0", "layer3.5", "layer3.4", "layer3.3", "layer3.2",
                   "layer3.1", "layer3.0", "layer2.3")
RESNET50_WIDTH = {"fc": 1000, "layer4": 2048, "layer3": 1024, "layer2": 512}
CLASS_TARGETS_PER_LAYER = 32  # neurons of a layer in one class circuit (targets of the layer below)
CORE_PER_TARGET = 8  # tau
GROUPS_PER_LAYER = 10
ZIPF = 1.1  # neuron popularity: P(rank r) ~ 1 / r^ZIPF over a per-layer random order of the channels


def synthetic_run(class_index: int, rng: np.random.Generator, popularity: dict[str, np.ndarray]):
    """BundleTables shaped like one ResNet50 class circuit (no patches): targets, core neurons, groups, edges."""
    from synthetic_run import synthetic_meta

    from neurflow_graph.bundle.files import SCHEMAS
    from neurflow_graph.bundle.tables import BundleTables
    from neurflow_graph.ids import neuron_id, semantic_group_id

    model, layers = "resnet50", RESNET50_LAYERS
    targets = {0: [class_index]}
    neurons, sgs, edges, groups, group_edges = [], [], [], [], []
    group_of_sg: dict[str, str] = {}
    for li, layer in enumerate(layers):
        is_leaf = li == len(layers) - 1
        for ch in targets[li]:
            neurons.append({"neuron_id": neuron_id(model, layer, ch), "layer": layer, "layer_index": li,
                            "channel": ch, "is_root": li == 0, "is_leaf": is_leaf, "top_patch_ids": [],
                            "activation_max": float(rng.random())})
        if is_leaf:
            break
        lower = layers[li + 1]
        pool = rng.choice(len(popularity[lower]), size=CLASS_TARGETS_PER_LAYER, replace=False, p=popularity[lower])
        n_groups = 1 if li == 0 else GROUPS_PER_LAYER
        layer_sgs = []
        children = set()
        for ch in targets[li]:
            core = rng.choice(pool, size=CORE_PER_TARGET, replace=False)
            children.update(int(c) for c in core)
            for j in range(int(rng.integers(2, 4))):
                sg = semantic_group_id(model, layer, ch, j)
                layer_sgs.append((ch, j, sg))
                w = rng.random(CORE_PER_TARGET) * rng.choice([-1.0, 1.0], CORE_PER_TARGET)
                for rank, (c, wi) in enumerate(zip(core, w / np.abs(w).sum(), strict=True)):
                    edges.append({"child_id": neuron_id(model, lower, int(c)), "parent_sg_id": sg,
                                  "parent_id": neuron_id(model, layer, ch), "child_layer": lower, "parent_layer": layer,
                                  "score": float(abs(wi)), "weight": float(wi), "core_score": float(abs(wi)),
                                  "core_rank": rank})
        assignment = np.arange(len(layer_sgs)) % n_groups
        rng.shuffle(assignment)
        for g in range(n_groups):
            members = [layer_sgs[i] for i in np.flatnonzero(assignment == g)]
            gid = f"{layer}/g{g}"
            groups.append({"group_id": gid, "layer": layer, "layer_index": li, "group_index": g, "is_root": li == 0,
                           "neuron_ids": sorted({neuron_id(model, layer, ch) for ch, _j, _sg in members}),
                           "sg_ids": [sg for _ch, _j, sg in members], "patch_ids": [], "exemplar_patch_ids": []})
            for ch, j, sg in members:
                group_of_sg[sg] = gid
                sgs.append({"sg_id": sg, "neuron_id": neuron_id(model, layer, ch), "layer": layer, "layer_index": li,
                            "group_index": j, "patch_ids": [], "mean_activation": float(rng.random()),
                            "neuron_group_id": gid})
        targets[li + 1] = sorted(children)
    groups_of_neuron: dict[str, list[str]] = {}
    for g in groups:
        for n in g["neuron_ids"]:
            groups_of_neuron.setdefault(n, []).append(g["group_id"])
    weights: dict[tuple[str, str], list[float]] = {}
    for e in edges:
        for child in groups_of_neuron.get(e["child_id"], ()):
            weights.setdefault((child, group_of_sg[e["parent_sg_id"]]), []).append(e["weight"])
    for (child, parent), ws in sorted(weights.items()):
        group_edges.append({"child_group_id": child, "parent_group_id": parent, "child_layer": child.split("/")[0],
                            "parent_layer": parent.split("/")[0], "weight": float(sum(ws)), "n_edges": len(ws)})
    run_id = f"{model}-c{class_index}-synthetic"
    meta = synthetic_meta(run_id, model, class_index, f"class {class_index}", layers, "2026-01-01T00:00:00Z",
                          {"preset": model})
    rows = {"patches": [], "neurons": neurons, "semantic_groups": sgs, "hyperedges": edges, "neuron_groups": groups,
            "group_edges": group_edges}
    tables = {name: pa.Table.from_pylist(r, schema=SCHEMAS[name]) for name, r in rows.items()}
    return BundleTables(meta=meta, **tables)


def zipf_popularity(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per layer, each channel's probability of being drawn: Zipf over a random order of the channels."""
    out = {}
    for layer in RESNET50_LAYERS[1:]:
        width = RESNET50_WIDTH[layer.split(".")[0]]
        p = 1.0 / np.arange(1, width + 1) ** ZIPF
        out[layer] = rng.permutation(p / p.sum())
    return out


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median and slowest wall time in ms over `repeats` calls (after two warm-up calls), and the last answer."""
    for _ in range(2):
        answer = fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 runs (digits 0-3, tau 4) and 5 repeats.")
    parser.add_argument("--repeats", type=int, help="Timed calls per query (default 20, quick 5).")
    parser.add_argument("--bundles", type=Path, default=Path.home() / ".cache" / "neurflow-graph" / "bench-bundles",
                        help="Folder caching the runs' bundles.")
    parser.add_argument("--data-dir", type=Path, help="Embedded store directory (default: a temporary one).")
    parser.add_argument("--classes", type=int, help="Measure on N synthetic ResNet50 class circuits instead.")
    parser.add_argument("--seed", type=int, default=0, help="--classes: seed of the synthetic circuits.")
    parser.add_argument("--only", help="--classes: comma-separated query names to time (default: all five).")
    parser.add_argument("--check", action="store_true", help="--classes: also count the SHARES pairs in Python over "
                        "the same circuits and compare shared_groups' top 100 (store, class 0) with that count.")
    parser.add_argument("--database", help="--classes: the store's database (default bench_scale_N); a store "
                        "written by a longer run (bench_scale_1000 stopped early) is measured at its first N classes.")
    args = parser.parse_args()
    if args.classes:
        with store(args.data_dir) as data_dir:
            only = tuple(q.strip() for q in args.only.split(",")) if args.only else tuple(SCALE_TARGETS_MS)
            measure_at_scale(data_dir, args.classes, args.repeats or 5, args.seed, only=only, database=args.database,
                             check=args.check)
        return
    classes, taus = (list(range(4)), [4]) if args.quick else (list(range(10)), [4, 6])
    repeats = args.repeats or (5 if args.quick else 20)

    print(f"bundles: {len(classes) * len(taus)} runs under {args.bundles}", flush=True)
    bundles = make_bundles(args.bundles, classes, taus)
    with tempfile.TemporaryDirectory(prefix="neurflow-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "store"
        owns_server = server.status(data_dir).state != "running"
        server.start(data_dir)
        try:
            with connect(data_dir, database=f"bench_queries_{int(time.time())}") as conn:
                started = time.perf_counter()
                for path in bundles:
                    write_run_graph(conn.driver, conn.database, path)
                print(f"ingested {len(bundles)} runs in {time.perf_counter() - started:.1f} s", flush=True)
                measure(conn, classes, repeats)
        finally:
            if owns_server:
                server.stop(data_dir)


@contextlib.contextmanager
def store(data_dir: Path | None):
    """The embedded store's data dir (a temporary one unless given), its server started and stopped if we own it."""
    with tempfile.TemporaryDirectory(prefix="neurflow-bench-") as tmp:
        data_dir = data_dir or Path(tmp) / "store"
        owns_server = server.status(data_dir).state != "running"
        server.start(data_dir)
        try:
            yield data_dir
        finally:
            if owns_server:
                server.stop(data_dir)


def capped(fn: Callable[[], object], cap_s: float) -> float | str | None:
    """Seconds one call takes, its error as one line, or None when it has not returned within cap_s."""
    import threading

    took: list[float | str] = []

    def call() -> None:
        started = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported as the query's figure
            took.append(str(exc).splitlines()[0][:300])
            return
        took.append(time.perf_counter() - started)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(cap_s)
    return took[0] if took else None


def measure_at_scale(data_dir: Path, n_classes: int, repeats: int, seed: int, cap_s: float = 120.0,
                     only: tuple[str, ...] = (), database: str | None = None, check: bool = False) -> None:
    """Write n_classes synthetic ResNet50 circuits through the writer, then time the cross-class queries."""
    rng = np.random.default_rng(seed)
    popularity = zipf_popularity(rng)
    database = database or f"bench_scale_{n_classes}"
    with connect(data_dir, database=database) as conn:
        done = {r["class_index"] for r in run_query(conn, "list_runs") if r["complete"]}
        elements, seconds, written = 0, 0.0, 0
        for c in range(n_classes):
            tables = synthetic_run(c, rng, popularity)  # drawn even when stored: the same store for any resume
            if c in done:
                continue
            report = write_run_graph(conn.driver, conn.database, tables)
            elements += report.nodes + report.relationships
            seconds += report.seconds
            written += 1
            if written <= 3 or written % 50 == 0 or c == n_classes - 1:
                print(f"  wrote {c + 1}/{n_classes} classes: {seconds / written:.2f} s and "
                      f"{elements / written:.0f} elements per class", flush=True)
        if written:
            print(f"write_s_per_class: {seconds / written:.2f}", flush=True)
            print(f"elements_per_class: {elements / written:.0f}", flush=True)
        class_id = "resnet50/0"
        layer = RESNET50_LAYERS[5]
        cases = {  # shared groups read the SHARES the writer keeps (J >= SHARES_FLOOR): top 100 is among those
            "circuit": lambda: fetch_class_circuit(conn, class_id),
            "bias_paths": lambda: run_query(conn, "bias_paths", class_id=class_id, limit=20),
            "shared_neurons": lambda: run_query(conn, "shared_neurons", layer=layer, min_classes=2, limit=100),
            "shared_groups_one_class": lambda: run_query(conn, "shared_groups", min_jaccard=0.3, class_id=class_id,
                                                         limit=100),
            "shared_groups_top100": lambda: run_query(conn, "shared_groups", min_jaccard=0.0, limit=100),
        }
        print(f"classes: {n_classes}; store size: {du(data_dir) / 2**20:.0f} MiB in {data_dir}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        if only:
            shares = {r["type"]: r["count"] for r in run_query(conn, "relationship_counts")}.get("SHARES", 0)
            print(f"shares_relationships: {shares} (J >= {SHARES_FLOOR})", flush=True)
        for name, fn in cases.items():
            if only and name not in only:
                continue
            first = capped(fn, cap_s)
            if isinstance(first, str):
                print(f"{name}_ms: failed ({first})", flush=True)
                continue
            if first is None:
                print(f"{name}_ms: >{cap_s * 1000:.0f}  (gave up after {cap_s:.0f} s; target "
                      f"{SCALE_TARGETS_MS[name]:.0f})", flush=True)
                break  # the server is still busy with it: later figures would be wrong
            if first > 2.0:  # slow: one more call is the figure
                again = capped(fn, cap_s)
                again = again if isinstance(again, float) else first
                print(f"{name}_ms: {again * 1000:.0f}  (one call; target {SCALE_TARGETS_MS[name]:.0f})", flush=True)
                continue
            median, worst, answer = timed(fn, repeats)
            print(f"{name}_ms: {median:.0f}  (max {worst:.0f}, target {SCALE_TARGETS_MS[name]:.0f}, "
                  f"{len(answer.edges) if hasattr(answer, 'edges') else len(answer)} rows)", flush=True)
        if check:
            check_shared_groups(conn, n_classes, seed, class_id)


def check_shared_groups(conn, n_classes: int, seed: int, class_id: str) -> None:
    """Count every pair of groups of different classes in a layer with Jaccard >= the floor over the same synthetic
    circuits, in Python, and print whether shared_groups' top 100 (over the store, of `class_id`) is that count's."""
    from collections import Counter

    rng = np.random.default_rng(seed)
    popularity = zipf_popularity(rng)
    groups = []  # (node id, run id, class id, neurons)
    for c in range(n_classes):
        tables = synthetic_run(c, rng, popularity)
        columns = (tables.neuron_groups.column(k).to_pylist() for k in ("group_id", "neuron_ids", "is_root"))
        groups += [(f"{tables.run_id}/{g}", tables.run_id, f"resnet50/{c}", frozenset(m))
                   for g, m, root in zip(*columns, strict=True) if not root and m]
    holding: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        for n in g[3]:
            holding.setdefault(n, []).append(i)
    pairs = []
    for i, x in enumerate(groups):
        for j, k in Counter(j for n in x[3] for j in holding[n] if j > i and groups[j][2] != x[2]).items():
            jaccard = k / (len(x[3]) + len(groups[j][3]) - k)
            if jaccard >= SHARES_FLOOR:
                a, b = sorted((x, groups[j]), key=lambda g: (g[1], g[0]))
                pairs.append((-jaccard, -k, a[0], b[0], a[2], b[2]))
    pairs.sort()
    want = {"top100": [p[2:4] for p in pairs[:100]],
            "one_class": [p[2:4] for p in pairs if class_id in p[4:]][:100]}
    got = {"top100": run_query(conn, "shared_groups", min_jaccard=0.0, limit=100),
           "one_class": run_query(conn, "shared_groups", min_jaccard=SHARES_FLOOR, class_id=class_id, limit=100)}
    print(f"check_pairs: {len(pairs)} pairs with J >= {SHARES_FLOOR} counted in Python", flush=True)
    for name, rows in got.items():
        same = [(r["group_a"], r["group_b"]) for r in rows] == [tuple(p) for p in want[name]]
        print(f"check_shared_groups_{name}: {'identical' if same else 'DIFFERENT'} to the Python count", flush=True)


SCALE_TARGETS_MS = {"circuit": 200, "bias_paths": 200, "shared_groups_one_class": 200, "shared_groups_top100": 1000,
                    "shared_neurons": 500}


def du(path: Path) -> int:
    """Bytes of the files under path."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def measure(conn, classes: list[int], repeats: int) -> None:
    """Time each query of the library and print a table."""
    infos = {c.index: c for c in fetch_classes(conn)}
    c3 = infos[3 if 3 in infos else classes[-1]]
    runs = [r["run_id"] for r in run_query(conn, "list_runs") if r["class_id"] == c3.class_id]
    neuron = next(n for g in fetch_class_circuit(conn, c3.class_id).groups if not g.is_root for n in g.neurons)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("circuit (groups + edges)", lambda: fetch_class_circuit(conn, c3.class_id)),
        ("  circuit_edges", lambda: run_query(conn, "circuit_edges", class_id=c3.class_id)),
        ("  circuit_edges top_n=2", lambda: run_query(conn, "circuit_edges", class_id=c3.class_id, top_n=2)),
        ("  circuit_groups", lambda: run_query(conn, "circuit_groups", class_id=c3.class_id)),
        ("bias paths, every group", lambda: run_query(conn, "bias_paths", class_id=c3.class_id, limit=20)),
        ("bias paths, one neuron", lambda: run_query(conn, "bias_paths", class_id=c3.class_id, source=neuron)),
        ("shared groups, J >= 0.3", lambda: run_query(conn, "shared_groups", min_jaccard=0.3)),
        ("shared groups, J >= 0", lambda: run_query(conn, "shared_groups", min_jaccard=0.0, limit=100_000)),
        ("shared neurons, conv2", lambda: run_query(conn, "shared_neurons", layer="conv2")),
        ("neuron roles", lambda: run_query(conn, "neuron_roles", neuron_id=neuron)),
        ("list classes", lambda: run_query(conn, "list_classes")),
    ]
    if len(runs) >= 2:
        cases.append(("compare two runs", lambda: fetch_run_comparison(conn, runs[0], runs[1])))
    helpers = [("fetch_bias_paths (typed)", lambda: fetch_bias_paths(conn, c3.class_id)),
               ("fetch_shared_groups (typed)", lambda: fetch_shared_groups(conn, 0.3)),
               ("fetch_shared_neurons (typed)", lambda: fetch_shared_neurons(conn, "conv2")),
               ("fetch_neuron_roles (typed)", lambda: fetch_neuron_roles(conn, neuron))]
    print(f"\nquery latency on {len(infos)} classes, {sum(i.n_runs for i in infos.values())} runs "
          f"(class {c3.class_id}, {repeats} timed calls each)")
    print(f"{'query':<32}{'median ms':>10}{'max ms':>9}{'rows':>7}  target {TARGET_MS:.0f} ms")
    for name, fn in cases + helpers:
        median, worst, answer = timed(fn, repeats)
        rows = len(answer.edges) if hasattr(answer, "edges") else len(answer) if hasattr(answer, "__len__") else ""
        flag = "ok" if median < TARGET_MS else "SLOW"
        print(f"{name:<32}{median:>10.1f}{worst:>9.1f}{rows:>7}  {flag}", flush=True)


if __name__ == "__main__":
    main()
