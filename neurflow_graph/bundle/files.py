"""Run bundles on disk: run.json, Parquet tables and PNG thumbnails (format in docs/artifacts.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from neurflow_graph.engine.circuit import Circuit, Transition
from neurflow_graph.engine.groups import GroupEdge, NeuronGroup, NeuronGroups
from neurflow_graph.engine.meta import RunMeta
from neurflow_graph.engine.patches import Patches
from neurflow_graph.engine.pipeline import Bundle
from neurflow_graph.errors import ArtifactError
from neurflow_graph.ids import channel_of, neuron_id, parse_semantic_group, semantic_group_id

TABLES = ("patches", "neurons", "semantic_groups", "hyperedges", "neuron_groups", "group_edges")
THUMBNAIL_SIZE = 96


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def _save_png(image: torch.Tensor, path: Path, size: int | None = None) -> None:
    picture = Image.fromarray(_to_uint8(image))
    if size:
        picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    picture.save(path)


def tables(bundle: Bundle) -> dict[str, pa.Table]:
    """The bundle's six tables as Arrow tables."""
    model, circuit, groups, patches = bundle.meta.model.name, bundle.circuit, bundle.groups, bundle.patches
    sg_to_group = {(g.layer, n, j): g.group_id for g in groups.groups for n, j in g.semantic_groups}
    exemplar_ids = sorted({p for g in groups.groups for p in g.exemplars})
    thumbs = np.full(len(patches), None, dtype=object)
    thumbs[exemplar_ids] = [f"thumbnails/p{p}.png" for p in exemplar_ids]
    images_sha = bundle.meta.images.sha256
    out = {
        "patches": pa.table({
            "patch_id": np.arange(len(patches)), "image_index": patches.image_index,
            "image_sha256": [images_sha[i] for i in patches.image_index], "granularity": patches.granularity,
            "x0": patches.boxes[:, 0], "y0": patches.boxes[:, 1], "x1": patches.boxes[:, 2], "y1": patches.boxes[:, 3],
            "thumbnail": pa.array(thumbs.tolist(), type=pa.string()),
        }, schema=_PATCHES)
    }
    neurons, sgs, edges = [], [], []
    n_layers = len(circuit.layers)
    for li, layer in enumerate(circuit.layers):
        if li < len(circuit.transitions):
            tr = circuit.transitions[li]
            channels, tops, act_max = tr.targets, tr.top_patches, tr.activation_max
        else:
            channels, tops, act_max = circuit.leaves, circuit.leaf_top_patches, circuit.leaf_activation_max
        for row, (channel, top) in enumerate(zip(channels, tops, strict=True)):
            neurons.append({
                "neuron_id": neuron_id(model, layer, int(channel)), "layer": layer, "layer_index": li,
                "channel": int(channel), "is_root": li == 0, "is_leaf": li == n_layers - 1,
                "top_patch_ids": [int(p) for p in top],
                "activation_max": float(act_max[row]),
            })
            if li < len(circuit.transitions):
                labels = tr.semantic_labels[row]
                for j in range(labels.max() + 1):
                    members = top[labels == j]
                    sgs.append({
                        "sg_id": semantic_group_id(model, layer, int(channel), j),
                        "neuron_id": neuron_id(model, layer, int(channel)), "layer": layer, "layer_index": li,
                        "group_index": j, "patch_ids": [int(p) for p in members],
                        "mean_activation": float(tr.sg_activation[row, j]),
                        "neuron_group_id": sg_to_group[(layer, int(channel), j)],
                    })
    for tr in circuit.transitions:
        for t, j, child, rank, score, weight in zip(tr.edge_target, tr.edge_group, tr.edge_child, tr.edge_rank,
                                                    tr.edge_score, tr.edge_weight, strict=True):
            parent = int(tr.targets[t])
            edges.append({
                "child_id": neuron_id(model, tr.lower, int(child)),
                "parent_sg_id": semantic_group_id(model, tr.layer, parent, int(j)),
                "parent_id": neuron_id(model, tr.layer, parent), "child_layer": tr.lower, "parent_layer": tr.layer,
                "score": float(score), "weight": float(weight),
                "core_score": float(tr.core_scores[t, rank]), "core_rank": int(rank),
            })
    out["neurons"] = pa.Table.from_pylist(neurons, schema=_NEURONS)
    out["semantic_groups"] = pa.Table.from_pylist(sgs, schema=_SGS)
    out["hyperedges"] = pa.Table.from_pylist(edges, schema=_EDGES)
    out["neuron_groups"] = pa.Table.from_pylist([{
        "group_id": g.group_id, "layer": g.layer, "layer_index": g.layer_index, "group_index": g.group_index,
        "is_root": g.is_root, "neuron_ids": [neuron_id(model, g.layer, n) for n in g.neurons],
        "sg_ids": [semantic_group_id(model, g.layer, n, j) for n, j in g.semantic_groups],
        "patch_ids": list(g.patch_ids), "exemplar_patch_ids": list(g.exemplars),
    } for g in groups.groups], schema=_GROUPS)
    layer_of = {g.group_id: g.layer for g in groups.groups}
    out["group_edges"] = pa.Table.from_pylist([{
        "child_group_id": e.child, "parent_group_id": e.parent, "child_layer": layer_of[e.child],
        "parent_layer": layer_of[e.parent], "weight": e.weight, "n_edges": e.n_edges,
    } for e in groups.edges], schema=_GROUP_EDGES)
    return out


_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_PATCHES = pa.schema([("patch_id", _I), ("image_index", _I), ("image_sha256", _S), ("granularity", _F),
                      ("x0", _I), ("y0", _I), ("x1", _I), ("y1", _I), ("thumbnail", _S)])
_NEURONS = pa.schema([("neuron_id", _S), ("layer", _S), ("layer_index", _I), ("channel", _I), ("is_root", _B),
                      ("is_leaf", _B), ("top_patch_ids", pa.list_(_I)), ("activation_max", _F)])
_SGS = pa.schema([("sg_id", _S), ("neuron_id", _S), ("layer", _S), ("layer_index", _I), ("group_index", _I),
                  ("patch_ids", pa.list_(_I)), ("mean_activation", _F), ("neuron_group_id", _S)])
_EDGES = pa.schema([("child_id", _S), ("parent_sg_id", _S), ("parent_id", _S), ("child_layer", _S),
                    ("parent_layer", _S), ("score", _F), ("weight", _F), ("core_score", _F), ("core_rank", _I)])
_GROUPS = pa.schema([("group_id", _S), ("layer", _S), ("layer_index", _I), ("group_index", _I), ("is_root", _B),
                     ("neuron_ids", pa.list_(_S)), ("sg_ids", pa.list_(_S)), ("patch_ids", pa.list_(_I)),
                     ("exemplar_patch_ids", pa.list_(_I))])
_GROUP_EDGES = pa.schema([("child_group_id", _S), ("parent_group_id", _S), ("child_layer", _S),
                          ("parent_layer", _S), ("weight", _F), ("n_edges", _I)])
SCHEMAS: dict[str, pa.Schema] = {"patches": _PATCHES, "neurons": _NEURONS, "semantic_groups": _SGS,
                                 "hyperedges": _EDGES, "neuron_groups": _GROUPS, "group_edges": _GROUP_EDGES}


def write_bundle(bundle: Bundle, out_dir: str | os.PathLike) -> Path:
    """Write the bundle to ``out_dir`` atomically: a complete directory appears, or none is changed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, table in tables(bundle).items():
            pq.write_table(table, staging / f"{name}.parquet")
        (staging / "thumbnails").mkdir()
        for p in sorted({p for g in bundle.groups.groups for p in g.exemplars}):
            _save_png(bundle.patches.crops([p])[0], staging / "thumbnails" / f"p{p}.png", THUMBNAIL_SIZE)
        (staging / "images").mkdir()
        for i, image in enumerate(bundle.patches.images):
            _save_png(image, staging / "images" / f"{i}.png")
        (staging / "run.json").write_text(bundle.meta.to_json())
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def read_run_meta(path: Path) -> RunMeta:
    """A bundle's run.json as the one typed run record, checked completely (``RunMeta.from_json``); a missing or
    unreadable file is one ArtifactError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; point at a directory written by 'neurflow-graph run'") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not readable JSON ({exc}); re-run the bundle") from None
    return RunMeta.from_json(text, str(path))


def read_tables(bundle_dir: str | os.PathLike) -> tuple[RunMeta, dict[str, pa.Table]]:
    """run.json (typed) and the six tables of a bundle, checked, each table's columns here and only here; anything
    missing is an ArtifactError naming it."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise ArtifactError(f"run bundle {bundle_dir} is not a directory")
    meta = read_run_meta(bundle_dir / "run.json")
    return meta, {name: _read_table(bundle_dir / f"{name}.parquet", schema) for name, schema in SCHEMAS.items()}


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.is_file():
        raise ArtifactError(f"bundle table {path} is missing; re-run the bundle or restore the file")
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(f"{path} is not a readable Parquet file ({exc}); re-run the bundle") from None
    missing = [c for c in schema.names if c not in names]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing)}; re-run the bundle")
    return pq.read_table(path, columns=schema.names)


def read_bundle(bundle_dir: str | os.PathLike) -> Bundle:
    """Load a bundle back into the objects that wrote it (images come back quantised to 8 bits)."""
    bundle_dir = Path(bundle_dir)
    meta, t = read_tables(bundle_dir)
    images = read_bundle_images(bundle_dir, meta.images.kept)
    p = t["patches"].to_pydict()
    patches = Patches(
        images=images.contiguous(), image_index=np.asarray(p["image_index"], dtype=np.int64),
        granularity=np.asarray(p["granularity"], dtype=np.float64),
        boxes=np.stack([p["x0"], p["y0"], p["x1"], p["y1"]], axis=1).astype(np.int64),
    )
    return Bundle(meta=meta, patches=patches, circuit=_read_circuit(meta, t), groups=_read_groups(t))


def read_bundle_images(bundle_dir: str | os.PathLike, n_images: int) -> torch.Tensor:
    """The run's class images as its bundle keeps them (``images/{i}.png``, 8 bits): N×C×S×S in [0, 1]."""
    bundle_dir = Path(bundle_dir)
    arrays = []
    for i in range(n_images):
        path = bundle_dir / "images" / f"{i}.png"
        try:
            with Image.open(path) as picture:
                arrays.append(np.array(picture, dtype=np.float32) / 255.0)
        except OSError as exc:
            raise ArtifactError(f"bundle image {path} is not readable ({exc}); re-run the bundle") from None
    images = torch.from_numpy(np.stack(arrays))
    return images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()


def _read_circuit(meta: RunMeta, t: dict[str, pa.Table]) -> Circuit:
    layers = meta.layers
    neurons = t["neurons"].to_pylist()
    sgs = t["semantic_groups"].to_pylist()
    edges = t["hyperedges"].to_pylist()
    transitions = []
    for li, (upper, lower) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        rows = sorted((n for n in neurons if n["layer_index"] == li), key=lambda n: n["channel"])
        targets = np.array([n["channel"] for n in rows], dtype=np.int64)
        row_of = {c: i for i, c in enumerate(targets)}
        top = np.array([n["top_patch_ids"] for n in rows], dtype=np.int64)
        labels = np.zeros_like(top)
        sg_activation = np.full((len(targets), meta.params.max_semantic_groups), np.nan)
        for sg in (s for s in sgs if s["layer_index"] == li):
            r = row_of[channel_of(sg["neuron_id"])]
            labels[r, np.isin(top[r], sg["patch_ids"])] = sg["group_index"]
            sg_activation[r, sg["group_index"]] = sg["mean_activation"]
        mine = [e for e in edges if e["parent_layer"] == upper]
        mine.sort(key=lambda e: (row_of[channel_of(e["parent_id"])], parse_semantic_group(e["parent_sg_id"])[1],
                                 e["core_rank"]))
        tau = max(e["core_rank"] for e in mine) + 1
        core = np.zeros((len(targets), tau), dtype=np.int64)
        core_scores = np.zeros((len(targets), tau))
        for e in mine:
            core[row_of[channel_of(e["parent_id"])], e["core_rank"]] = channel_of(e["child_id"])
            core_scores[row_of[channel_of(e["parent_id"])], e["core_rank"]] = e["core_score"]
        stats = meta.layer_stats[upper]  # one per layer above the leaves (RunMeta.parse checks)
        transitions.append(Transition(
            layer=upper, lower=lower, targets=targets, top_patches=top, core=core, core_scores=core_scores,
            semantic_labels=labels,
            edge_target=np.array([row_of[channel_of(e["parent_id"])] for e in mine], dtype=np.int64),
            edge_group=np.array([parse_semantic_group(e["parent_sg_id"])[1] for e in mine], dtype=np.int64),
            edge_child=np.array([channel_of(e["child_id"]) for e in mine], dtype=np.int64),
            edge_rank=np.array([e["core_rank"] for e in mine], dtype=np.int64),
            edge_score=np.array([e["score"] for e in mine]), edge_weight=np.array([e["weight"] for e in mine]),
            activation_max=np.array([n["activation_max"] for n in rows]), sg_activation=sg_activation,
            n_steps=stats.n_steps, completeness_error=stats.completeness_error, seconds=stats.seconds,
        ))
    leaves = sorted((n for n in neurons if n["layer_index"] == len(layers) - 1), key=lambda n: n["channel"])
    return Circuit(
        layers=tuple(layers), class_index=meta.class_index, transitions=tuple(transitions),
        leaf_top_patches=np.array([n["top_patch_ids"] for n in leaves], dtype=np.int64),
        leaf_activation_max=np.array([n["activation_max"] for n in leaves]),
    )


def _read_groups(t: dict[str, pa.Table]) -> NeuronGroups:
    groups = tuple(
        NeuronGroup(
            group_id=g["group_id"], layer=g["layer"], layer_index=g["layer_index"], group_index=g["group_index"],
            is_root=g["is_root"], neurons=tuple(channel_of(n) for n in g["neuron_ids"]),
            semantic_groups=tuple((channel_of(n), j) for n, j in map(parse_semantic_group, g["sg_ids"])),
            patch_ids=tuple(g["patch_ids"]), exemplars=tuple(g["exemplar_patch_ids"]),
        )
        for g in t["neuron_groups"].to_pylist()
    )
    edges = tuple(
        GroupEdge(child=e["child_group_id"], parent=e["parent_group_id"], weight=e["weight"], n_edges=e["n_edges"])
        for e in t["group_edges"].to_pylist()
    )
    return NeuronGroups(groups=groups, edges=edges)
