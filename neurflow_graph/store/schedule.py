"""The write scheduler: write steps that name the nodes they touch, run on several connections at once.

Two steps run together only when they touch disjoint nodes, so concurrent transactions never change the same
node (ArcadeDB refuses that with retries; Neo4j would lock), and a step starts only after the earlier steps it
shares nodes with. Generic over what a step writes: `store/writer.py` plans a bundle's steps.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neurflow_graph.errors import StoreError

if TYPE_CHECKING:
    import pyarrow as pa

    from neurflow_graph.bundle.tables import BundleTables


class Label(enum.Enum):
    """The node labels the writer creates or links."""

    MODEL = "Model"
    LAYER = "Layer"
    CLASS = "Class"
    RUN = "Run"
    NEURON = "Neuron"
    PATCH = "Patch"
    SEMANTIC_GROUP = "SemanticGroup"
    NEURON_GROUP = "NeuronGroup"


class Rel(enum.Enum):
    """The relationship types the writer creates."""

    OF_MODEL = "OF_MODEL"
    FOR_CLASS = "FOR_CLASS"
    IN_LAYER = "IN_LAYER"
    IN_CIRCUIT = "IN_CIRCUIT"
    IN_RUN = "IN_RUN"
    HAS_SEMANTIC_GROUP = "HAS_SEMANTIC_GROUP"
    IN_GROUP = "IN_GROUP"
    MEMBER_OF = "MEMBER_OF"
    EXEMPLAR = "EXEMPLAR"
    DRIVES = "DRIVES"
    FEEDS = "FEEDS"
    LOGIT_OF = "LOGIT_OF"
    SHARES = "SHARES"


@dataclass(frozen=True)
class Nodes:
    """The nodes of one label a step creates or links: all of them, or one shard (`shard` of `blocks` shards)."""

    label: Label
    shard: int | None = None

    def overlaps(self, other: Nodes) -> bool:
        """Whether the two may hold a common node: one label, whole or in the same shard."""
        return self.label is other.label and (self.shard is None or other.shard is None or self.shard == other.shard)


@dataclass(frozen=True)
class WriteStep:
    """One write query of the plan: its file, its rows, the nodes it touches, the relationships it creates.

    Each batch's own result counts what it wrote (`written`, checked against the rows' element count, and the
    `nodes` and `relationships` it created or merged), so no count is kept here.
    """

    query: str
    rows: Callable[[BundleTables], pa.Table]
    touches: frozenset[Nodes]
    creates: frozenset[Rel]
    missing: str  # what a short write means, for the error message
    params: Mapping[str, Any] = field(default_factory=dict)

    def overlaps(self, other: WriteStep) -> bool:
        """Whether the two steps may touch a common node (then the later one waits for the earlier)."""
        return any(a.overlaps(b) for a in self.touches for b in other.touches)


def run_steps(steps: Sequence[WriteStep], work: Callable[[WriteStep, threading.Event], None], writers: int) -> None:
    """Call `work(step, stopped)` for every step on up to `writers` threads (this one included).

    A step starts once every earlier step it may share nodes with (`WriteStep.overlaps`) has finished, so steps run
    together only on disjoint nodes. The first exception sets `stopped` (work checks it between
    batches), lets no further step start, and is raised here once every running step has returned.
    """
    lock = threading.Condition()
    started: set[int] = set()
    finished: set[int] = set()
    stopped = threading.Event()
    errors: list[BaseException] = []

    def ready(i: int) -> bool:
        return all(j in finished for j in range(i) if steps[j].overlaps(steps[i]))

    def next_step() -> int | None:
        with lock:
            while not stopped.is_set():
                waiting = [i for i in range(len(steps)) if i not in started]
                if not waiting:
                    return None
                i = next((i for i in waiting if ready(i)), None)
                if i is not None:
                    started.add(i)
                    return i
                lock.wait()
            return None

    def worker() -> None:
        while (i := next_step()) is not None:
            try:
                work(steps[i], stopped)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                    stopped.set()
                    lock.notify_all()
                return
            with lock:
                finished.add(i)
                lock.notify_all()

    threads = [threading.Thread(target=worker, name=f"store-writer-{k}") for k in range(1, writers)]
    for thread in threads:
        thread.start()
    try:
        worker()
        for thread in threads:
            thread.join()
    except BaseException:  # interrupted outside a step (e.g. Ctrl-C while waiting): stop the others too
        with lock:
            stopped.set()
            lock.notify_all()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    if len(finished) != len(steps):  # cannot happen without an error above; never report a partial write
        raise StoreError(f"only {len(finished)} of {len(steps)} write steps finished")
