"""Write throughput of the graph store: a synthetic circuit shaped like a real bundle, written by write_run_graph.

Writes about 100k nodes and 300k relationships (the `--quick` mode a fifth of that) into the embedded
ArcadeDB server and, when NEO4J_URI is set, into Neo4j too, and prints nodes+relationships per second
side by side, next to the plain way (one MERGE per element, 1000 rows a transaction) measured in the same
run. `--writers 2,1` compares numbers of concurrent writers, `--batch-sizes 2000,10000` write batch sizes and
`--collectors parallel,g1` the embedded server's JVM collector (one server each), repeats alternating so that
a drifting machine treats each alike (every write in a fresh database). With
NEO4J_URI set, the benchmark's runs are written into NEO4J_DATABASE and left there: point it at a scratch
database.

    python benchmarks/store_write.py [--quick] [--writers N,N,...] [--batch-sizes N,N,...]
                                     [--collectors parallel,g1,serial] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
from synthetic_run import synthetic_meta

from neurflow_graph.bundle.tables import BundleTables
from neurflow_graph.store import DEFAULT_WRITERS, admin, connect, server, write_run_graph
from neurflow_graph.store import rows as R
from neurflow_graph.store.connection import NEO4J_URI_ENV, Connection
from neurflow_graph.store.schema import ensure_schema

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


def synthetic_bundle(shape: Shape, *, seed: int = 0, model: str = "benchnet", tag: str = "bench") -> BundleTables:
    """A circuit with the tables and invariants of docs/artifacts.md, generated with numpy (seconds)."""
    rng = np.random.default_rng(seed)
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
    meta = synthetic_meta(run_id, model, 0, "0", LAYERS, "2026-11-22T10:00:00+00:00",
                          {"preset": model, "weights": "synthetic"}, k=shape.k, tau=16, seed=seed)
    return BundleTables(meta, patches, neurons, semantic_groups, hyperedges, neuron_groups, group_edges)


def expected_elements(tables: BundleTables) -> tuple[int, int]:
    """Nodes and relationships the bundle puts in the graph (as counted by the writer's report)."""
    ng = tables.neuron_groups
    n_members = sum(len(x) for x in ng.column("neuron_ids").to_pylist())
    n_in_group = sum(len(x) for x in ng.column("sg_ids").to_pylist())
    n_ex = sum(len(x) for x in ng.column("exemplar_patch_ids").to_pylist())
    n_layers = len(tables.meta.layers)
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


def measure(conn: Connection, tables: BundleTables, batch_size: int, writers: int) -> float:
    """Write `tables` once; nodes+relationships per second."""
    report = write_run_graph(conn.driver, conn.database, tables, batch_size=batch_size, writers=writers)
    return report.elements_per_second


# The reference point: one map row per element, MERGE for every node and relationship, 1000 rows a
# transaction. Labels and types cannot be parameters, so each statement is built from these fixed names.
_PLAIN_NODE = "UNWIND $rows AS row MERGE (n:{label} {{id: row.id}}) SET n += row.props"
_PLAIN_REL = (
    "UNWIND $rows AS row MATCH (a:{a} {{id: row.a}}) MATCH (b:{b} {{id: row.b}}) "
    "MERGE (a)-[r:{type}]->(b) SET r += row.props"
)
_PLAIN_BATCH = 1000


def plain_merge_loop(conn: Connection, tables: BundleTables) -> float:
    """Write the circuit the plain way (see _PLAIN_NODE); nodes+relationships per second."""
    run_id, model = tables.run_id, tables.model_name

    def nodes(table: pa.Table, props: list[str]) -> list[dict]:
        ids = table["id"].to_pylist()
        return [{"id": i, "props": p} for i, p in zip(ids, table.select(props).to_pylist(), strict=True)]

    def rels(a: list, b: list, props: list[dict] | None = None) -> list[dict]:
        props = props or [{}] * len(a)
        return [{"a": x, "b": y, "props": p} for x, y, p in zip(a, b, props, strict=True)]

    def exploded(table: pa.Table, key: str, values: str, ranked: bool = False) -> tuple[list, list, list]:
        owners, items, props = [], [], []
        for owner, members in zip(table[key].to_pylist(), table[values].to_pylist(), strict=True):
            owners += [owner] * len(members)
            items += members
            props += [{"rank": i} if ranked else {} for i in range(len(members))]
        return owners, items, props

    layers, neurons = R.layer_rows(tables), R.neuron_rows(tables)
    groups, sgs, feeds = R.neuron_group_rows(tables), R.semantic_group_rows(tables), R.group_edge_rows(tables)
    edges = tables.hyperedges
    in_circuit = neurons.select(["layer_index", "is_root", "is_leaf", "activation_max", "top_patch_ids"])
    group_ids, sg_ids = exploded(R.in_group_rows(tables), "group_id", "members")[:2]
    member_groups, members = exploded(R.member_rows(tables), "group_id", "members")[:2]
    neuron_ids, run_ids = neurons["id"].to_pylist(), [run_id] * neurons.num_rows
    steps = [
        ("Model", [{"id": model, "props": {"name": model}}]),
        ("Run", [{"id": run_id, "props": {"complete": False}}]),
        ("Layer", nodes(layers, ["name"])),
        ("Neuron", nodes(neurons, ["layer", "channel"])),
        ("Patch", nodes(R.patch_rows(tables), ["patch_id", "image_index", "image_sha256", "granularity", "x0", "y0"])),
        ("NeuronGroup", nodes(groups, ["group_id", "layer", "layer_index", "group_index", "is_root", "patch_ids"])),
        ("SemanticGroup", nodes(sgs, ["sg_id", "neuron_id", "layer", "patch_ids", "mean_activation"])),
        (("Layer", "Model", "OF_MODEL"), rels(layers["id"].to_pylist(), [model] * layers.num_rows)),
        (("Neuron", "Layer", "IN_LAYER"), rels(neuron_ids, neurons["layer_id"].to_pylist())),
        (("Neuron", "Run", "IN_CIRCUIT"), rels(neuron_ids, run_ids, in_circuit.to_pylist())),
        (("NeuronGroup", "Run", "IN_RUN"), rels(groups["id"].to_pylist(), [run_id] * groups.num_rows)),
        (("Neuron", "SemanticGroup", "HAS_SEMANTIC_GROUP"), rels(sgs["neuron_id"].to_pylist(), sgs["id"].to_pylist())),
        (("SemanticGroup", "NeuronGroup", "IN_GROUP"), rels(sg_ids, group_ids)),
        (("Neuron", "NeuronGroup", "MEMBER_OF"), rels(members, member_groups)),
        (("NeuronGroup", "Patch", "EXEMPLAR"), rels(*exploded(R.exemplar_rows(tables), "group_id", "patches", True))),
        (
            ("Neuron", "SemanticGroup", "DRIVES"),
            rels(
                edges["child_id"].to_pylist(),
                [f"{run_id}/{p}" for p in edges["parent_sg_id"].to_pylist()],
                edges.select(["score", "weight", "core_score", "core_rank"]).to_pylist(),
            ),
        ),
        (
            ("NeuronGroup", "NeuronGroup", "FEEDS"),
            rels(
                feeds["child"].to_pylist(), feeds["parent"].to_pylist(), feeds.select(["weight", "n_edges"]).to_pylist()
            ),
        ),
    ]
    started, written = time.perf_counter(), 0
    for what, rows in steps:
        if isinstance(what, str):
            statement = _PLAIN_NODE.format(label=what)
        else:
            statement = _PLAIN_REL.format(a=what[0], b=what[1], type=what[2])
        for i in range(0, len(rows), _PLAIN_BATCH):
            conn.driver.execute_query(statement, {"rows": rows[i : i + _PLAIN_BATCH]}, database_=conn.database)
        written += len(rows)
    return written / (time.perf_counter() - started)


def rust_packstream() -> bool:
    """Whether the neo4j driver packs parameters with its Rust extension (neo4j-rust-ext)."""
    try:
        from neo4j._codec.packstream.v1 import _rust_pack
    except ImportError:
        return False
    return _rust_pack is not None


Setting = tuple[str | None, int, int]  # (JVM collector of the embedded server or None, writers, batch size)


def run_store(store: str, open_conn, shape_tables, settings: list[Setting], repeat: int, warmup: int) -> dict:
    """Per collector a cold write and `warmup` unmeasured ones, then `repeat` writes per setting: {label: value}.

    `open_conn(collector, tag)` opens a fresh database (embedded store: on that collector's server, dropped
    afterwards, so that no write pays for the ones before it); a repeat writes every setting once, so settings
    alternate; the median of the repeats is reported, the single best after it.
    """
    tables = shape_tables
    collectors = list(dict.fromkeys(c for c, _, _ in settings))
    _, writers0, size0 = settings[0]
    out: dict[str, float] = {}
    for c in collectors:
        with open_conn(c, f"cold{c or ''}") as conn:
            out[f"first write (cold){_gc_label(c, collectors)}"] = measure(conn, tables("cold"), size0, writers0)
        for i in range(warmup):
            with open_conn(c, f"warm{i}{c or ''}") as conn:
                measure(conn, tables(f"warm{i}"), size0, writers0)
    rates: dict[Setting, list[float]] = {s: [] for s in settings}
    for rep in range(repeat):
        for c, w, size in settings:
            tag = f"{c or ''}w{w}b{size}r{rep}"
            with open_conn(c, tag) as conn:
                rates[c, w, size].append(measure(conn, tables(tag), size, w))

    def label(setting: Setting) -> str:
        c, w, size = setting
        return f"{w} writer{'s' if w > 1 else ''}, batch {size}{_gc_label(c, collectors)}"

    for setting, got in rates.items():
        out[f"warm, {label(setting)}, median"] = statistics.median(got)
        out[f"warm, {label(setting)}, best"] = max(got)
        print(f"  {store} warm, {label(setting)}: " + ", ".join(f"{r:,.0f}/s" for r in got), flush=True)
    with open_conn(collectors[0], "plain") as conn:
        ensure_schema(conn.driver, conn.database)  # the same constraints and indexes, created untimed
        out["plain UNWIND/MERGE loop"] = plain_merge_loop(conn, tables("plain"))
    print(f"  {store} plain UNWIND/MERGE loop: {out['plain UNWIND/MERGE loop']:,.0f}/s", flush=True)
    head = statistics.median(rates[settings[0]])
    out[f"ratio: {label(settings[0])} / plain"] = head / out["plain UNWIND/MERGE loop"]
    for setting in settings[1:]:
        out[f"ratio: {label(settings[0])} / {label(setting)}"] = head / statistics.median(rates[setting])
    return out


def _gc_label(collector: str | None, collectors: list[str | None]) -> str:
    return f", {collector} GC" if collector is not None and len(collectors) > 1 else ""


@contextlib.contextmanager
def fresh_embedded_database(data_dir: Path, name: str) -> Iterator[Connection]:
    """A connection to a new database `name` on the embedded server, dropped when the block ends."""
    with connect(data_dir, database=name) as conn:
        yield conn
    admin.drop_database(server.start(data_dir), server.read_password(data_dir), name)


def start_server(data_dir: Path, collector: str) -> bool:
    """Start the embedded server of `data_dir` with `collector` unless one runs; True if started here."""
    if server.status(data_dir).state == "running":
        return False
    with mock.patch.dict(os.environ, {server.GC_ENV: collector}):  # the server reads it as it starts
        server.start(data_dir)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the circuit (under a minute)")
    parser.add_argument("--batch-sizes", default="10000", help="comma-separated write batch sizes to compare")
    parser.add_argument(
        "--writers", default=f"{DEFAULT_WRITERS},1", help="comma-separated numbers of concurrent writers to compare"
    )
    parser.add_argument(
        "--collectors",
        default=server.DEFAULT_COLLECTOR,
        help=f"comma-separated JVM collectors of the embedded server to compare ({', '.join(server.COLLECTORS)})",
    )
    parser.add_argument("--data-dir", default=None, help="embedded store data dir (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=3, help="measured writes per setting (median and best)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured writes after the cold one")
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    writers = [int(w) for w in args.writers.split(",")]
    collectors = args.collectors.split(",")
    unknown = [c for c in collectors if c not in server.COLLECTORS]
    if unknown:
        parser.error(f"--collectors: unknown {unknown}")
    if args.data_dir and len(collectors) > 1:
        parser.error("--data-dir takes one collector")
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

    def tables(tag: str) -> BundleTables:  # the same circuit under fresh ids: no write finds nodes of another
        return synthetic_bundle(shape, model=f"benchnet_{tag}", tag=tag)

    neo4j_uri = os.environ.pop(NEO4J_URI_ENV, None)  # the embedded store first
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="nfg-bench-")
    root = Path(args.data_dir or tmp.name)
    data_dirs = {c: root if args.data_dir else root / c for c in collectors}
    stamp = int(time.time())
    results: dict[str, dict[str, float]] = {}
    started: list[Path] = []
    try:
        for c, data_dir in data_dirs.items():
            if start_server(data_dir, c):
                started.append(data_dir)
        results["arcadedb"] = run_store(
            "arcadedb",
            lambda c, tag: fresh_embedded_database(data_dirs[c], f"bench_{stamp}_{tag}"),
            tables,
            [(c, w, size) for size in sizes for c in collectors for w in writers],
            args.repeat,
            warmup,
        )
    finally:
        for data_dir in started:
            server.stop(data_dir)
        if tmp is not None:
            tmp.cleanup()
    if neo4j_uri:
        os.environ[NEO4J_URI_ENV] = neo4j_uri
        results["neo4j"] = run_store(
            "neo4j",
            lambda c, tag: connect(),
            tables,
            [(None, w, size) for size in sizes for w in writers],
            args.repeat,
            warmup,
        )

    stores = list(results)
    labels = list(dict.fromkeys(label for r in results.values() for label in r))
    print(f"\nnodes+relationships per second ({nodes + rels:,} elements per write)")
    width = max(map(len, labels)) + 2
    print(f"{'':<{width}}" + "".join(f"{s:>12}" for s in stores))
    for label in labels:
        cells = (results[s].get(label, float("nan")) for s in stores)
        print(
            f"{label:<{width}}" + "".join(f"{v:>12.2f}" if label.startswith("ratio") else f"{v:>12,.0f}" for v in cells)
        )
    if not neo4j_uri:
        print("(set NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD to measure Neo4j in the same run)")


if __name__ == "__main__":
    main()
