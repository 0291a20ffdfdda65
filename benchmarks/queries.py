"""Latency of the query library on an embedded store holding 20 real runs: digits 0-9 at two settings of tau.

Each run is a real NeurFlow run of the digits CNN (12 images per class, k=20, n_steps=16; tau 4 and 6, a few
seconds each on a CPU), cached under --bundles so a second invocation only ingests and measures. The runs go
into a fresh database of the embedded ArcadeDB server; then every timed query runs --repeats times after two
warm-up calls, through the same helpers the CLI uses (driver round trip included), and the median and the
slowest are printed. Target: each under 200 ms. `--quick`: digits 0-3 at one setting, 5 repeats.

    python benchmarks/queries.py [--quick] [--repeats N] [--bundles DIR] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
from neurflow_graph.store import connect, server, write_bundle

TARGET_MS = 200.0


def _reusable(bundle: Path) -> bool:
    """Whether a bundle written earlier reads with this release (an older bundle_format is computed again)."""
    from neurflow_graph.artifacts import read_run_json
    from neurflow_graph.errors import ArtifactError

    try:
        read_run_json(bundle / "run.json")
    except ArtifactError:
        return False
    return True


def make_bundles(folder: Path, classes: list[int], taus: list[int], images: int = 12) -> list[Path]:
    """Real runs of the digits CNN, one per (class, tau), written once under `folder` and reused."""
    from neurflow_graph.artifacts import write_bundle as write_bundle_dir
    from neurflow_graph.digits import digits_images
    from neurflow_graph.images import filter_predicted, image_set_from_tensors
    from neurflow_graph.pipeline import ModelSpec, NeurFlow
    from neurflow_graph.presets import get_preset

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
    args = parser.parse_args()
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
                    write_bundle(conn.driver, conn.database, path)
                print(f"ingested {len(bundles)} runs in {time.perf_counter() - started:.1f} s", flush=True)
                measure(conn, classes, repeats)
        finally:
            if owns_server:
                server.stop(data_dir)


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
