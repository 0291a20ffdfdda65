"""Write throughput of the graph store: a synthetic circuit shaped like a real bundle, written by write_bundle.

Writes about 100k nodes and 300k relationships (the `--quick` mode a fifth of that) into the embedded
ArcadeDB server and, when NEO4J_URI is set, into Neo4j too, and prints nodes+relationships per second
side by side. `--batch-sizes 2000,10000` compares write batch sizes (each in a fresh database).

    python benchmarks/store_write.py [--quick] [--batch-sizes N,N,...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from neurflow_graph.store import connect, server, write_bundle
from neurflow_graph.store.bundle import BundleTables
from neurflow_graph.store.connection import NEO4J_URI_ENV, Connection

LAYERS = ("fc", "layer4", "layer3", "layer2", "layer1")


@dataclass(frozen=True)
class Shape:
    """Circuit size: neurons per layer (layer 0 is the one root), semantic groups per neuron, core size k."""

    widths: tuple[int, ...] = (1, 24, 576, 4000, 12000)
    sg_per_neuron: int = 2
    k: int = 26
    n_images: int = 1250
    patches_per_image: int = 59  # granularities 1, 0.5, 0.25 with stride ratio 0.5
    sgs_per_group: int = 20
    n_exemplars: int = 8

    def scaled(self, factor: float) -> Shape:
        widths = (1, *(max(2, int(w * factor)) for w in self.widths[1:]))
        return Shape(
            widths,
            self.sg_per_neuron,
            self.k,
            max(1, int(self.n_images * factor)),
            self.patches_per_image,
            self.sgs_per_group,
            self.n_exemplars,
        )


def synthetic_bundle(shape: Shape, *, seed: int = 0, tag: str = "bench") -> BundleTables:
    """A circuit with the tables and invariants of docs/artifacts.md, generated with numpy (seconds)."""
    rng = np.random.default_rng(seed)
    model = "benchnet"
    run_id = f"{model}-c0-{tag}"
    n_patches = shape.n_images * shape.patches_per_image
    pid = np.arange(n_patches, dtype=np.int64)
    image = pid // shape.patches_per_image
    x0 = rng.integers(0, 200, n_patches)
    y0 = rng.integers(0, 200, n_patches)
    size = rng.choice([56, 112, 224], n_patches)
    patches = pa.table(
        {
            "patch_id": pid,
            "image_index": image,
            "image_sha256": pa.array([f"{i:064x}" for i in image]),
            "granularity": (size / 224.0).astype(np.float64),
            "x0": x0,
            "y0": y0,
            "x1": x0 + size,
            "y1": y0 + size,
            "thumbnail": pa.array([None] * n_patches, pa.string()),
        }
    )

    neuron_ids: list[str] = []
    layer_col: list[str] = []
    layer_idx: list[int] = []
    channel: list[int] = []
    for li, (layer, width) in enumerate(zip(LAYERS, shape.widths, strict=True)):
        channels = [0] if li == 0 else list(range(width))
        neuron_ids += [f"{model}/{layer}/{c}" for c in channels]
        layer_col += [layer] * len(channels)
        layer_idx += [li] * len(channels)
        channel += channels
    n_neurons = len(neuron_ids)
    leaf = len(LAYERS) - 1
    neurons = pa.table(
        {
            "neuron_id": neuron_ids,
            "layer": layer_col,
            "layer_index": pa.array(layer_idx, pa.int64()),
            "channel": pa.array(channel, pa.int64()),
            "is_root": [i == 0 for i in range(n_neurons)],
            "is_leaf": [li == leaf for li in layer_idx],
            "top_patch_ids": pa.array(list(rng.integers(0, n_patches, (n_neurons, 16))), pa.list_(pa.int64())),
            "activation_max": rng.random(n_neurons) * 10,
        }
    )

    sg_ids, sg_neuron, sg_layer, sg_li, sg_j, sg_group = [], [], [], [], [], []
    e_child, e_parent, e_parent_n, e_child_l, e_parent_l = [], [], [], [], []
    groups: list[dict] = []
    start = 0
    for li in range(leaf):
        width = 1 if li == 0 else shape.widths[li]
        layer_neurons = neuron_ids[start : start + width]
        start += width
        child_width = shape.widths[li + 1]
        child_base = f"{model}/{LAYERS[li + 1]}/"
        n_sg = width * shape.sg_per_neuron
        n_groups = 1 if li == 0 else max(1, n_sg // shape.sgs_per_group)
        # cores: a permutation so that every child neuron is in some core
        cores = np.arange(n_sg * shape.k) % child_width
        rng.shuffle(cores)
        for s in range(n_sg):
            nid = layer_neurons[s // shape.sg_per_neuron]
            sid = f"{nid}#s{s % shape.sg_per_neuron}"
            g = 0 if li == 0 else s % n_groups
            sg_ids.append(sid)
            sg_neuron.append(nid)
            sg_layer.append(LAYERS[li])
            sg_li.append(li)
            sg_j.append(s % shape.sg_per_neuron)
            sg_group.append(f"{LAYERS[li]}/g{g}")
            for c in np.unique(cores[s * shape.k : (s + 1) * shape.k]):
                e_child.append(child_base + str(c))
                e_parent.append(sid)
                e_parent_n.append(nid)
                e_child_l.append(LAYERS[li + 1])
                e_parent_l.append(LAYERS[li])
        for g in range(n_groups):
            gid = f"{LAYERS[li]}/g{g}"
            members = [i for i in range(len(sg_ids) - n_sg, len(sg_ids)) if sg_group[i] == gid]
            groups.append(
                {
                    "group_id": gid,
                    "layer": LAYERS[li],
                    "layer_index": li,
                    "group_index": g,
                    "is_root": li == 0,
                    "neuron_ids": sorted({sg_neuron[i] for i in members}),
                    "sg_ids": [sg_ids[i] for i in members],
                    "patch_ids": rng.integers(0, n_patches, 32).tolist(),
                    "exemplar_patch_ids": rng.choice(n_patches, shape.n_exemplars, replace=False).tolist(),
                }
            )
    n_sgs = len(sg_ids)
    semantic_groups = pa.table(
        {
            "sg_id": sg_ids,
            "neuron_id": sg_neuron,
            "layer": sg_layer,
            "layer_index": pa.array(sg_li, pa.int64()),
            "group_index": pa.array(sg_j, pa.int64()),
            "patch_ids": pa.array(list(rng.integers(0, n_patches, (n_sgs, 8))), pa.list_(pa.int64())),
            "mean_activation": rng.random(n_sgs),
            "neuron_group_id": sg_group,
        }
    )
    raw = rng.uniform(-1, 1, len(e_child))
    parent_codes = pa.array(e_parent).dictionary_encode().indices.to_numpy()
    norm = np.bincount(parent_codes, weights=np.abs(raw))[parent_codes]
    hyperedges = pa.table(
        {
            "child_id": e_child,
            "parent_sg_id": e_parent,
            "parent_id": e_parent_n,
            "child_layer": e_child_l,
            "parent_layer": e_parent_l,
            "score": raw * 3,
            "weight": raw / norm,
            "core_score": np.abs(raw),
            "core_rank": pa.array(np.zeros(len(e_child), dtype=np.int64)),
        }
    )
    neuron_groups = pa.Table.from_pylist(
        groups,
        schema=pa.schema(
            [
                ("group_id", pa.string()),
                ("layer", pa.string()),
                ("layer_index", pa.int64()),
                ("group_index", pa.int64()),
                ("is_root", pa.bool_()),
                ("neuron_ids", pa.list_(pa.string())),
                ("sg_ids", pa.list_(pa.string())),
                ("patch_ids", pa.list_(pa.int64())),
                ("exemplar_patch_ids", pa.list_(pa.int64())),
            ]
        ),
    )
    # group edges: child neuron's first group -> parent semantic group's group, weights summed
    first_group = dict(zip(reversed(sg_neuron), reversed(sg_group), strict=True))
    sg_to_group = dict(zip(sg_ids, sg_group, strict=True))
    pairs = pa.table(
        {
            "child_group_id": [first_group.get(c) for c in e_child],
            "parent_group_id": [sg_to_group[p] for p in e_parent],
            "weight": hyperedges.column("weight"),
        }
    ).drop_null()
    agg = pairs.group_by(["child_group_id", "parent_group_id"]).aggregate([("weight", "sum"), ("weight", "count")])
    layer_of = {g["group_id"]: g["layer"] for g in groups}
    group_edges = pa.table(
        {
            "child_group_id": agg.column("child_group_id"),
            "parent_group_id": agg.column("parent_group_id"),
            "child_layer": [layer_of[c] for c in agg.column("child_group_id").to_pylist()],
            "parent_layer": [layer_of[p] for p in agg.column("parent_group_id").to_pylist()],
            "weight": agg.column("weight_sum"),
            "n_edges": agg.column("weight_count").cast(pa.int64()),
        }
    )
    run = {
        "bundle_format": 1,
        "run_id": run_id,
        "created_at": "2026-11-22T10:00:00+00:00",
        "complete": True,
        "model": {"name": model, "preset": model, "weights": "synthetic", "num_classes": 1000},
        "class": {"index": 0, "name": "0"},
        "layers": list(LAYERS),
        "params": {"k": shape.k, "tau": 16, "seed": seed},
    }
    return BundleTables(run, patches, neurons, semantic_groups, hyperedges, neuron_groups, group_edges)


def expected_elements(tables: BundleTables) -> tuple[int, int]:
    """Nodes and relationships the bundle puts in the graph (as counted by the writer's report)."""
    ng = tables.neuron_groups
    n_members = sum(len(x) for x in ng.column("neuron_ids").to_pylist())
    n_in_group = sum(len(x) for x in ng.column("sg_ids").to_pylist())
    n_ex = sum(len(x) for x in ng.column("exemplar_patch_ids").to_pylist())
    n_layers = len(tables.run["layers"])
    nodes = (
        tables.neurons.num_rows + tables.patches.num_rows + tables.semantic_groups.num_rows + ng.num_rows + n_layers + 3
    )
    rels = (
        2 * tables.neurons.num_rows
        + n_layers
        + tables.semantic_groups.num_rows
        + ng.num_rows
        + n_in_group
        + n_members
        + n_ex
        + tables.hyperedges.num_rows
        + tables.group_edges.num_rows
        + 4
    )
    return nodes, rels


def measure(conn: Connection, tables: BundleTables, batch_size: int) -> float:
    """Write `tables` once; nodes+relationships per second."""
    return write_bundle(conn.driver, conn.database, tables, batch_size=batch_size).elements_per_second


def rust_packstream() -> bool:
    """Whether the neo4j driver packs parameters with its Rust extension (neo4j-rust-ext)."""
    try:
        from neo4j._codec.packstream.v1 import _rust_pack
    except ImportError:
        return False
    return _rust_pack is not None


def run_store(store: str, open_conn, shape_tables, sizes: list[int], repeat: int, warmup: int) -> dict:
    """Cold write, `warmup` unmeasured writes, then `repeat` writes per batch size: {label: elements/s}."""
    tables = shape_tables
    out: dict[str, float] = {}
    with open_conn("cold") as conn:
        out["first write (cold)"] = measure(conn, tables("cold"), sizes[0])
    for i in range(warmup):
        with open_conn(f"warm{i}") as conn:
            measure(conn, tables(f"warm{i}"), sizes[0])
    for size in sizes:
        rates = []
        for rep in range(repeat):
            with open_conn(f"b{size}r{rep}") as conn:
                rates.append(measure(conn, tables(f"b{size}r{rep}"), size))
        out[f"warm, batch {size}"] = max(rates)
        print(f"  {store} batch {size}: " + ", ".join(f"{r:,.0f}/s" for r in rates), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the circuit (under a minute)")
    parser.add_argument("--batch-sizes", default="10000", help="comma-separated write batch sizes to compare")
    parser.add_argument("--data-dir", default=None, help="embedded store data dir (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=1, help="measured writes per batch size (best reported)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured writes after the cold one")
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    shape = Shape().scaled(0.2) if args.quick else Shape()
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)

    t = time.perf_counter()
    base = synthetic_bundle(shape)
    nodes, rels = expected_elements(base)
    print(
        f"synthetic circuit: {nodes:,} nodes, {rels:,} relationships ({base.hyperedges.num_rows:,} "
        f"hyper-edges), generated in {time.perf_counter() - t:.1f} s; neo4j driver packstream: "
        f"{'rust' if rust_packstream() else 'pure python (pip install neo4j-rust-ext for ~2x)'}"
    )

    def tables(tag: str) -> BundleTables:  # the same circuit under another run id
        return dataclasses.replace(base, run=dict(base.run, run_id=f"benchnet-c0-{tag}"))

    neo4j_uri = os.environ.pop(NEO4J_URI_ENV, None)  # the embedded store first
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="nfg-bench-")
    data_dir = Path(args.data_dir or tmp.name)
    started_here = server.status(data_dir).state != "running"
    stamp = int(time.time())
    results: dict[str, dict[str, float]] = {}
    try:
        results["arcadedb"] = run_store(
            "arcadedb",
            lambda tag: connect(data_dir, database=f"bench_{stamp}_{tag}"),
            tables,
            sizes,
            args.repeat,
            warmup,
        )
    finally:
        if started_here:
            server.stop(data_dir)
        if tmp is not None:
            tmp.cleanup()
    if neo4j_uri:
        os.environ[NEO4J_URI_ENV] = neo4j_uri
        results["neo4j"] = run_store("neo4j", lambda tag: connect(), tables, sizes, args.repeat, warmup)

    stores = list(results)
    print(f"\nnodes+relationships per second ({nodes + rels:,} elements per write)")
    print(f"{'':<22}" + "".join(f"{s:>12}" for s in stores))
    for label in results["arcadedb"]:
        print(f"{label:<22}" + "".join(f"{results[s].get(label, float('nan')):>12,.0f}" for s in stores))
    if not neo4j_uri:
        print("(set NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD to measure Neo4j in the same run)")


if __name__ == "__main__":
    main()
