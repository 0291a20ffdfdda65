"""Server time of the explorer's pages (`neurflow-graph serve`) on the store of N synthetic ResNet50 class circuits
that `benchmarks/queries.py --classes N` writes (the same circuits, seed and database name, so either command
reuses the other's store): the index, a class page, a group page and the compare page, each as HTML and as JSON.

The app runs under uvicorn on 127.0.0.1 in this process; each page is fetched --repeats times after two warm-up
calls and the median and slowest wall time of the request (HTTP round trip on the loopback included) are printed
against the 300 ms target, as `<page>_<html|json>_ms: median (max …, ratio median/target)`. Classes missing from
the store are written first (1-2 s each on a shared 2-core machine, 2026-12-07: the 1000-class store took
about 28 minutes).

    python benchmarks/serve.py [--classes 1000] [--data-dir DIR] [--database NAME] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queries import RESNET50_LAYERS, store, synthetic_run, zipf_popularity  # noqa: E402 - the same circuits

from neurflow_graph.query import fetch_class_circuit, fetch_shared_groups, run_query  # noqa: E402
from neurflow_graph.serve.server import serving_in_thread  # noqa: E402
from neurflow_graph.store import connect, write_run_graph  # noqa: E402

TARGET_MS = 300.0


def fill(conn, n_classes: int, seed: int) -> None:
    """Write the synthetic classes 0..n-1 the store lacks (drawn in order, so the store is the same for any N)."""
    rng = np.random.default_rng(seed)
    popularity = zipf_popularity(rng)
    done = {r["class_index"] for r in run_query(conn, "list_runs") if r["complete"]}
    written, started = 0, time.perf_counter()
    for c in range(n_classes):
        tables = synthetic_run(c, rng, popularity)
        if c in done:
            continue
        write_run_graph(conn.driver, conn.database, tables)
        written += 1
        if written <= 3 or written % 50 == 0 or c == n_classes - 1:
            print(f"  wrote {c + 1}/{n_classes} classes ({(time.perf_counter() - started) / written:.1f} s each)",
                  flush=True)


def fetch_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url}: HTTP {answer.status}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000, help="Synthetic ResNet50 classes in the store.")
    parser.add_argument("--data-dir", type=Path, help="Embedded store directory (default: a temporary one).")
    parser.add_argument("--database", help="The store's database (default bench_scale_N, as benchmarks/queries.py).")
    parser.add_argument("--repeats", type=int, default=10, help="Timed requests per page.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic circuits.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    figures: dict[str, object] = {"classes": args.classes, "target_ms": TARGET_MS, "pages": {}}
    with store(args.data_dir) as data_dir, \
            connect(data_dir, database=args.database or f"bench_scale_{args.classes}") as conn:
        fill(conn, args.classes, args.seed)
        class_id = "resnet50/0"
        circuit = fetch_class_circuit(conn, class_id)
        group = next(g for g in circuit.groups if g.layer == RESNET50_LAYERS[5])
        pairs = fetch_shared_groups(conn, min_jaccard=0.5, cls=class_id, limit=100)
        other = next((p.class_b if p.class_a == class_id else p.class_a for p in pairs), "resnet50/1")
        pages = {"index": "/", "class": f"/class/{class_id}", "group": f"/group/{group.id}",
                 "compare": f"/compare?a={class_id}&b={other}"}
        print(f"classes: {args.classes} (database {conn.database}); class page {class_id} ({len(circuit.groups)} "
              f"groups, {len(circuit.edges)} edges), group {group.id}, compare with {other}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        with serving_in_thread(conn) as base:
            for name, path in pages.items():
                for kind in ("html", "json"):
                    url = base + (path if kind == "html" else _json(path))
                    for _ in range(2):
                        fetch_ms(url)
                    times = [fetch_ms(url) for _ in range(args.repeats)]
                    median = statistics.median(times)
                    figures["pages"][f"{name}_{kind}"] = {"median_ms": median, "max_ms": max(times), "url": path}
                    print(f"{name}_{kind}_ms: {median:.1f} (max {max(times):.1f}; ratio to the {TARGET_MS:.0f} ms "
                          f"target {median / TARGET_MS:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _json(path: str) -> str:
    page, _, query = path.partition("?")
    page = "/index.json" if page == "/" else page + ".json"
    return page + (f"?{query}" if query else "")


if __name__ == "__main__":
    main()
