"""Label a stored class circuit: a short name and a description per neuron group, and a relation per top edge.

For each group the model sees one grid of its exemplar patches (section 5.2 and appendix G of the paper);
for the heaviest FEEDS edges into each parent it sees the parent's and the child's grids and says how the
child's feature builds the parent's. Answers are stored on the graph one item per transaction, with a key
(hash of exemplars, prompt version and model) that lets a later run skip what did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from neurflow_graph.errors import ArtifactError, ConfigError, NeurflowGraphError, StoreUnavailable
from neurflow_graph.ids import group_node_id, slug
from neurflow_graph.labels import grid as G
from neurflow_graph.labels import prompts
from neurflow_graph.labels.client import HOW_TO_CONFIGURE, ChatClient, EndpointNotConfigured, LLMError, redact
from neurflow_graph.query.labels import (
    fetch_edges,
    fetch_groups,
    fetch_label_run,
    write_group_label,
    write_relation,
)
from neurflow_graph.records import Edge, Group, Run
from neurflow_graph.store.connection import Connection

DEFAULT_MAX_RELATIONS = 2
"""Relations asked per parent group: its heaviest incoming edges."""
MAX_EXEMPLARS = 8
"""Exemplar patches shown per group (the bundle keeps 8 by default: a 4×2 grid)."""

Kind = Literal["group", "relation"]
LabelStatus = Literal["labelled", "cached", "prompted", "failed", "skipped"]


@dataclass(frozen=True)
class ItemResult:
    """What happened to one group or edge: labelled (answer stored), cached, prompted (dry run), failed, skipped."""

    kind: Kind
    target: str
    status: LabelStatus
    text: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LabelReport:
    """Everything one `label_circuit` call did, item by item; `ok` is False when any item failed."""

    run_id: str
    class_id: str
    model: str | None
    results: tuple[ItemResult, ...]
    dry_run_dir: Path | None = None
    stopped: str | None = None
    """Why the remaining items were skipped (an error every later request would repeat), else None."""

    def count(self, kind: Kind, status: LabelStatus) -> int:
        return sum(1 for r in self.results if r.kind == kind and r.status == status)

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None

    def summary(self) -> str:
        """One line per kind, then the failures, e.g. `groups: 6 labelled, 2 cached, 0 failed`."""
        if self.dry_run_dir is not None:
            head = (f"dry run of {self.run_id}: {self.count('group', 'prompted')} group prompts and "
                    f"{self.count('relation', 'prompted')} relation prompts written to {self.dry_run_dir}; "
                    "nothing was sent")
        else:
            head = f"run {self.run_id} ({self.class_id}), model {self.model}"
            if not self.ok:
                head += f": {len(self.failed)} failed" + (", stopped early" if self.stopped else "")
        lines = [head]
        done: LabelStatus = "prompted" if self.dry_run_dir is not None else "labelled"
        for kind, word in (("group", "labelled"), ("relation", "explained")):
            counts = [f"{self.count(kind, done)} {word if done == 'labelled' else done}"]
            counts += [f"{self.count(kind, s)} {s}" for s in ("cached", "failed", "skipped")]
            lines.append(f"  {kind}s: " + ", ".join(counts))
        lines += [f"  failed {r.kind} {r.target}: {r.error}" for r in self.failed]
        if self.stopped:
            lines.append(f"  stopped: {self.stopped}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Grid:
    png: bytes
    n: int
    exemplars: tuple[tuple[int, str], ...]  # (patch_id, sha256 of the thumbnail file)


def label_circuit(
    conn: Connection,
    class_ref: str,
    *,
    client: ChatClient | None,
    run_id: str | None = None,
    layers: Sequence[str] | None = None,
    force: bool = False,
    dry_run_dir: str | os.PathLike[str] | None = None,
    max_relations: int = DEFAULT_MAX_RELATIONS,
    bundle_dir: str | os.PathLike[str] | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
) -> LabelReport:
    """Label the neuron groups of a class circuit and explain its heaviest edges; returns a LabelReport.

    `class_ref` names the class (id like "digits/3", index or name); the newest complete run is used unless
    `run_id`. `layers` restricts the groups labelled (and the relations from them to their parents).
    With `dry_run_dir` every prompt is written there instead of sent (and `client` may be None). Failures
    of single items are recorded in the report, and the rest continue.
    """
    if dry_run_dir is None and client is None:
        raise EndpointNotConfigured(f"no LLM endpoint is configured: {HOW_TO_CONFIGURE}; or pass --dry-run DIR "
                                    "to write the prompts without sending them")
    if not isinstance(max_relations, int) or isinstance(max_relations, bool) or max_relations < 0:
        raise ConfigError(f"max_relations must be an int >= 0, got {max_relations!r}")
    if isinstance(layers, str):
        layers = [layers]
    run = fetch_label_run(conn, class_ref, run_id)
    bundle = _bundle_folder(run, bundle_dir)
    groups = fetch_groups(conn, run.run_id)
    selected = _select_layers(groups, layers)
    by_id = {g.group_id: g for g in groups}
    selected_ids = {g.group_id for g in selected}
    edges = [e for e in top_edges(fetch_edges(conn, run.run_id), max_relations)
             if e.child in selected_ids and e.parent in by_id]

    model = client.settings.model if client is not None else None
    secret = client.settings.api_key if client is not None else None
    job = _Job(conn, run, bundle, client, model, secret, force,
               _DryRun(Path(dry_run_dir), run, client) if dry_run_dir is not None else None, on_result)
    for group in selected:
        job.item("group", group.group_id, lambda g=group: job.label_group(g))
    for edge in edges:
        target = f"{edge.child} -> {edge.parent}"
        job.item("relation", target, lambda e=edge: job.relate(e, by_id[e.parent], by_id[e.child]))
    if job.dry is not None:
        job.dry.finish()
    return LabelReport(run.run_id, run.class_id, model, tuple(job.results),
                       Path(dry_run_dir) if dry_run_dir is not None else None, job.stopped)


def top_edges(edges: Iterable[Edge], max_per_parent: int) -> list[Edge]:
    """The `max_per_parent` heaviest edges into each parent (positive weights only; ties by child id)."""
    by_parent: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        if edge.weight > 0:
            by_parent[edge.parent].append(edge)
    chosen = []
    for parent in sorted(by_parent):
        chosen += sorted(by_parent[parent], key=lambda e: (-e.weight, e.child))[:max_per_parent]
    return chosen


def group_key(model: str | None, exemplars: Sequence[tuple[int, str]], prompt_version: str) -> str:
    """The cache key of a group's label: a hash of its exemplars (ids and image bytes), prompt version and model."""
    return _hash({"kind": "group", "model": model, "prompt_version": prompt_version, "grid": _grid_layout(),
                  "exemplars": [list(e) for e in exemplars]})


def relation_key(
    model: str | None, parent: Sequence[tuple[int, str]], child: Sequence[tuple[int, str]], prompt_version: str
) -> str:
    """The cache key of an edge's relation: both groups' exemplars, the prompt version and the model."""
    return _hash({"kind": "relation", "model": model, "prompt_version": prompt_version, "grid": _grid_layout(),
                  "parent": [list(e) for e in parent], "child": [list(e) for e in child]})


class _Job:
    """The state of one labelling pass: grids built so far, results, and whether to stop."""

    def __init__(self, conn: Connection, run: Run, bundle: Path, client: ChatClient | None, model: str | None,
                 secret: str | None, force: bool, dry: _DryRun | None,
                 on_result: Callable[[ItemResult], None] | None) -> None:
        self.conn, self.run, self.bundle, self.client = conn, run, bundle, client
        self.model, self.secret, self.force, self.dry, self.on_result = model, secret, force, dry, on_result
        self.grids: dict[str, _Grid] = {}
        self.results: list[ItemResult] = []
        self.stopped: str | None = None

    def item(self, kind: Kind, target: str, work: Callable[[], ItemResult]) -> None:
        """Run one item; a failure is recorded (redacted) and, when every later item would fail too, stops the pass."""
        if self.stopped is not None:
            result = ItemResult(kind, target, "skipped", error=self.stopped)
        else:
            try:
                result = work()
            except (NeurflowGraphError, OSError) as exc:
                message = redact(str(exc), self.secret)
                result = ItemResult(kind, target, "failed", error=message)
                if (isinstance(exc, LLMError) and exc.fatal) or isinstance(exc, StoreUnavailable):
                    self.stopped = message
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def label_group(self, group: Group) -> ItemResult:
        grid = self.grid(group)
        if grid is None:
            return ItemResult("group", group.group_id, "skipped", error="no exemplar thumbnails")
        version = prompts.LABEL_PROMPT_VERSION
        key = group_key(self.model, grid.exemplars, version)
        if not self.force and group.label is not None and group.label_key == key:
            return ItemResult("group", group.group_id, "cached", text=group.label)
        messages = prompts.label_messages(grid.png, grid.n)
        if self.dry is not None:
            self.dry.add("group", group.group_id, messages, [(group, grid)], key)
            return ItemResult("group", group.group_id, "prompted")
        answer = prompts.parse_label(self._client().complete(messages))
        write_group_label(self.conn, group.id, label=answer.label, description=answer.description,
                          model=str(self.model), prompt_version=version, key=key)
        return ItemResult("group", group.group_id, "labelled", text=answer.label)

    def relate(self, edge: Edge, parent: Group, child: Group) -> ItemResult:
        target = f"{edge.child} -> {edge.parent}"
        parent_grid, child_grid = self.grid(parent), self.grid(child)
        if parent_grid is None or child_grid is None:
            return ItemResult("relation", target, "skipped", error="a group has no exemplar thumbnails")
        version = prompts.RELATION_PROMPT_VERSION
        key = relation_key(self.model, parent_grid.exemplars, child_grid.exemplars, version)
        if not self.force and edge.relation is not None and edge.relation_key == key:
            return ItemResult("relation", target, "cached", text=edge.relation)
        messages = prompts.relation_messages(parent_grid.png, child_grid.png)
        if self.dry is not None:
            self.dry.add("relation", target, messages, [(parent, parent_grid), (child, child_grid)], key)
            return ItemResult("relation", target, "prompted")
        answer = prompts.parse_relation(self._client().complete(messages))
        write_relation(self.conn, group_node_id(self.run.run_id, edge.child),
                       group_node_id(self.run.run_id, edge.parent), relation=answer.relation, model=str(self.model),
                       prompt_version=version, key=key)
        return ItemResult("relation", target, "labelled", text=answer.relation)

    def _client(self) -> ChatClient:
        if self.client is None:  # label_circuit refuses this case up front
            raise EndpointNotConfigured(f"no LLM endpoint is configured: {HOW_TO_CONFIGURE}")
        return self.client

    def grid(self, group: Group) -> _Grid | None:
        """The group's exemplar grid (built once): up to MAX_EXEMPLARS thumbnails, best first; None without any."""
        if group.id in self.grids:
            return self.grids[group.id]
        shown = [(pid, thumb) for pid, thumb in zip(group.patch_ids, group.thumbnails, strict=True) if thumb]
        shown = shown[:MAX_EXEMPLARS]
        if not shown:
            return None
        files, exemplars = [], []
        for pid, thumb in shown:
            path = self.bundle / thumb
            try:
                data = path.read_bytes()
            except OSError:
                raise ArtifactError(f"thumbnail {path} is missing; if the bundle moved, pass --bundle DIR") from None
            files.append(path)
            exemplars.append((pid, hashlib.sha256(data).hexdigest()))
        image = G.exemplar_grid(files)
        self.grids[group.id] = _Grid(G.png_bytes(image), len(files), tuple(exemplars))
        return self.grids[group.id]


class _DryRun:
    """Writes each prompt (text file, grid PNGs, and a manifest of every request) to a folder instead of sending it."""

    def __init__(self, folder: Path, run: Run, client: ChatClient | None) -> None:
        self.folder, self.run, self.client = folder, run, client
        self.entries: list[dict[str, Any]] = []
        self.images: dict[str, int] = {}
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--dry-run: cannot create folder {folder}: {exc.strerror}") from None

    def add(self, kind: Kind, target: str, messages: list[dict[str, Any]],
            grids: list[tuple[Group, _Grid]], key: str) -> None:
        names = [self._image(group, grid) for group, grid in grids]
        stem = f"{kind}-" + "--".join(slug(g.group_id, "-") for g, _ in reversed(grids))
        shown = _with_files(messages, iter(names))
        text_file = f"{stem}.txt"
        (self.folder / text_file).write_text(_readable(kind, target, self.run, shown), encoding="utf-8")
        text_chars = sum(len(p["text"]) for m in shown for p in _parts(m) if p.get("type") == "text")
        self.entries.append({
            "kind": kind, "target": target, "text_file": text_file, "images": names, "cache_key": key,
            "text_chars": text_chars, "image_bytes": sum(self.images[n] for n in names), "messages": shown,
        })

    def finish(self) -> None:
        body = self.client.request_body([]) if self.client is not None else {}
        manifest = {
            "run_id": self.run.run_id,
            "class_id": self.run.class_id,
            "model": body.get("model"),
            "endpoint": self.client.settings.safe_endpoint if self.client is not None else None,
            "request_settings": {k: v for k, v in body.items() if k not in ("model", "messages")},
            "label_prompt_version": prompts.LABEL_PROMPT_VERSION,
            "relation_prompt_version": prompts.RELATION_PROMPT_VERSION,
            "requests": len(self.entries),
            "images_sent": sum(len(e["images"]) for e in self.entries),
            "image_bytes_sent": sum(e["image_bytes"] for e in self.entries),
            "text_chars_sent": sum(e["text_chars"] for e in self.entries),
            "prompts": self.entries,
        }
        (self.folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def _image(self, group: Group, grid: _Grid) -> str:
        name = f"grid-{slug(group.group_id, '-')}.png"
        if name not in self.images:
            (self.folder / name).write_bytes(grid.png)
            self.images[name] = len(grid.png)
        return name


def _bundle_folder(run: Run, bundle_dir: str | os.PathLike[str] | None) -> Path:
    folder = Path(bundle_dir) if bundle_dir is not None else (Path(run.bundle_path) if run.bundle_path else None)
    if folder is None:
        raise ConfigError(f"run {run.run_id} has no bundle path in the store; pass --bundle DIR (its bundle folder)")
    if not folder.is_dir():
        raise ArtifactError(f"the bundle of run {run.run_id} is not at {folder}; pass --bundle DIR if it moved")
    return folder


def _select_layers(groups: list[Group], layers: Sequence[str] | None) -> list[Group]:
    if not groups:
        return []
    if layers is None or len(layers) == 0:
        return groups
    known = list(dict.fromkeys(g.layer for g in groups))
    unknown = [name for name in layers if name not in known]
    if unknown:
        raise ConfigError(f"layers: {', '.join(repr(u) for u in unknown)} hold no neuron group of this run; "
                          f"valid layers: {', '.join(known)}")
    return [g for g in groups if g.layer in set(layers)]


def _grid_layout() -> list[int]:
    return [G.COLUMNS, G.TILE, G.GAP, MAX_EXEMPLARS]


def _hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _with_files(messages: list[dict[str, Any]], names: Iterable[str]) -> list[dict[str, Any]]:
    """`messages` with each image's data URI replaced by the name of the file holding it."""
    names = iter(names)
    out = []
    for message in messages:
        if isinstance(message["content"], str):
            out.append(dict(message))
            continue
        parts = []
        for part in message["content"]:
            if part.get("type") == "image_url":
                part = {"type": "image_url", "image_url": {"url": next(names)}}
            parts.append(part)
        out.append({**message, "content": parts})
    return out


def _readable(kind: Kind, target: str, run: Run, messages: list[dict[str, Any]]) -> str:
    lines = [f"# {kind} prompt: {target} (run {run.run_id}, class {run.class_id})", ""]
    for message in messages:
        lines.append(f"## {message['role']}")
        for part in _parts(message):
            if part.get("type") == "text":
                lines.append(part["text"].rstrip())
            else:
                lines.append(f"[image: {part['image_url']['url']}]")
        lines.append("")
    return "\n".join(lines)
