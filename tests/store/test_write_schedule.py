"""How the writer shares its steps between connections: concurrent only on disjoint labels, in plan order otherwise."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from neurflow_graph.store import read_bundle_tables
from neurflow_graph.store import rows as R
from neurflow_graph.store.queries import load
from neurflow_graph.store.schedule import Label, Nodes, WriteStep, run_steps
from neurflow_graph.store.writer import _plan

WAIT = 20.0  # seconds a step waits for its partner before the test calls the schedule sequential
X, Y, Z = Label.MODEL, Label.LAYER, Label.CLASS


def _step(name: str, *touches: Label | Nodes) -> WriteStep:
    nodes = frozenset(t if isinstance(t, Nodes) else Nodes(t) for t in touches)
    return WriteStep(name, lambda tables: None, nodes, frozenset(), "")


class Log:
    """Records the start and end of every step, in the order they happen."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def add(self, what: str, step: str) -> None:
        with self.lock:
            self.events.append((what, step, threading.current_thread().name))

    def index(self, what: str, step: str) -> int:
        return next(i for i, (w, s, _) in enumerate(self.events) if (w, s) == (what, step))


def test_steps_on_disjoint_labels_run_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=WAIT)  # passes only when both steps are running at once
    log = Log()

    def work(step: WriteStep, stopped: threading.Event) -> None:
        log.add("start", step.query)
        if step.query in ("patches", "neurons"):
            both.wait()
        log.add("end", step.query)

    steps = [_step("layers", Label.LAYER), _step("neurons", Label.NEURON, Label.LAYER), _step("patches", Label.PATCH)]
    run_steps(steps, work, writers=2)
    assert {thread for _, _, thread in log.events} == {threading.current_thread().name, "store-writer-1"}
    assert log.index("end", "layers") < log.index("start", "neurons")  # shares Layer: waits


def test_steps_sharing_a_label_keep_plan_order() -> None:
    log = Log()

    def work(step: WriteStep, stopped: threading.Event) -> None:
        log.add("start", step.query)
        time.sleep(0.05)  # long enough for a wrongly started step to show up before this one ends
        log.add("end", step.query)

    steps = [
        _step("a", X),
        _step("b", Y),
        _step("c", X, Y),
        _step("d", Z),
        _step("e", Y, Z),
        _step("f", X),
    ]
    run_steps(steps, work, writers=3)
    assert sorted(s for w, s, _ in log.events if w == "end") == list("abcdef")
    for i, first in enumerate(steps):
        for later in steps[i + 1 :]:
            if first.touches & later.touches:
                assert log.index("end", first.query) < log.index("start", later.query), (first.query, later.query)


def test_one_writer_runs_the_plan_in_order_in_the_calling_thread() -> None:
    seen: list[tuple[str, str]] = []
    steps = [_step("a", X), _step("b", Y), _step("c", Z)]
    run_steps(steps, lambda step, stopped: seen.append((step.query, threading.current_thread().name)), writers=1)
    assert seen == [(s.query, threading.current_thread().name) for s in steps]


def test_a_failing_step_stops_the_others_and_is_raised() -> None:
    started: list[str] = []
    partner_running = threading.Event()

    def work(step: WriteStep, stopped: threading.Event) -> None:
        started.append(step.query)
        if step.query == "long":  # runs beside "bad" until the failure reaches it
            partner_running.set()
            assert stopped.wait(WAIT), "the failure did not stop the running step"
        elif step.query == "bad":
            assert partner_running.wait(WAIT)
            raise RuntimeError("batch failed")

    steps = [_step("long", X), _step("bad", Y), _step("after-bad", Y), _step("after-long", X)]
    with pytest.raises(RuntimeError, match="batch failed"):
        run_steps(steps, work, writers=2)
    assert sorted(started) == ["bad", "long"]  # nothing started after the failure


@pytest.mark.parametrize("blocks", [1, 3])
def test_every_write_step_touches_the_labels_its_query_names(bundle_dir: Path, blocks: int) -> None:
    """Two steps may run together only if their queries name disjoint labels: `touches` must cover them, and
    `creates` names exactly the relationship types the query writes."""
    label = re.compile(r"\(\w*:(\w+)")
    rel_type = re.compile(r"\[\w*:(\w+)")
    for step in _plan(read_bundle_tables(bundle_dir), blocks):
        text = " ".join(load(step.query).statements)
        named = set(label.findall(text))
        touched = {t.label.value for t in step.touches}
        assert named and named <= touched, (step.query, named - touched)
        assert set(rel_type.findall(text)) == {r.value for r in step.creates}, step.query


def test_shards_of_a_label_overlap_the_label_and_themselves_only() -> None:
    neuron, sg, patch = Label.NEURON, Label.SEMANTIC_GROUP, Label.PATCH
    assert _step("a", neuron).overlaps(_step("b", Nodes(neuron, 1)))
    assert _step("a", Nodes(neuron, 1), patch).overlaps(_step("b", Nodes(neuron, 1)))
    assert not _step("a", Nodes(neuron, 0)).overlaps(_step("b", Nodes(neuron, 1)))
    assert not _step("a", Nodes(sg, 0), Nodes(neuron, 1)).overlaps(_step("b", Nodes(sg, 1), Nodes(neuron, 0)))
    assert not _step("a", neuron).overlaps(_step("b", patch))


@pytest.mark.parametrize("blocks", [2, 3])
def test_hyperedge_blocks_form_a_latin_square(bundle_dir: Path, blocks: int) -> None:
    """Every edge is in exactly one block, and the blocks of one round share no parent and no child."""
    tables = read_bundle_tables(bundle_dir)
    steps = [s for s in _plan(tables, blocks) if s.query == "write_hyperedges"]
    assert len(steps) == blocks * blocks
    edges = [_edges(step.rows(tables)) for step in steps]
    assert sorted(e for block in edges for e in block) == sorted(_edges(R.hyperedge_rows(tables)))
    for r in range(blocks):
        round_ = range(r * blocks, (r + 1) * blocks)
        for i in round_:
            for j in round_:
                if i < j:
                    assert not steps[i].overlaps(steps[j])
                    assert not {p for p, _ in edges[i]} & {p for p, _ in edges[j]}
                    assert not {c for _, c in edges[i]} & {c for _, c in edges[j]}


def _edges(rows: pa.Table) -> list[tuple[str, str]]:
    pairs = zip(rows["sg"].to_pylist(), rows["children"].to_pylist(), strict=True)
    return [(parent, child) for parent, children in pairs for child in children]
