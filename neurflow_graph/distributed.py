"""Ingest on Ray: a pool of actors, each loading the model once, computes classes; the driver stores them.

Only the scheduling lives here; what to skip, compute, write and store is decided by ``jobs``. Ray is an
optional extra (``pip install 'neurflow-graph[ray]'``), imported only when this module runs a job.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MissingDependency
from .jobs import (
    ClassOutcome,
    CompleteRuns,
    IngestReport,
    Log,
    bundle_target,
    complete_runs,
    skip_complete_requests,
    store_bundle,
)

if TYPE_CHECKING:
    from .recipes import Recipe
    from .store.connection import Connection

IN_FLIGHT_PER_WORKER = 2  # one class computing, one queued behind it: a worker never waits for the driver


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("--ray needs Ray, which is not installed; pip install 'neurflow-graph[ray]'") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: a cluster address (None: start a local Ray), pool size, GPUs per worker."""

    address: str | None = None
    workers: int | None = None  # default: as many as the cluster's GPUs (or CPUs) allow, at most one per class
    gpus_per_worker: float | None = None  # default: 1 where the cluster has GPUs, else 0 (CPU workers)
    max_retries: int = 3  # a dead worker is restarted and its class retried this many times

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")


class ClassWorker:
    """A Ray actor's state: the recipe's model, built once, used for every class sent to it."""

    def __init__(self, recipe: Recipe) -> None:
        from .recipes import prepare_model

        self.prepared = prepare_model(recipe)

    def compute(self, name: str, root: str, complete: frozenset[str], force: bool,
                request_key: str | None = None) -> ClassOutcome:
        """``jobs.compute_class`` with bundles under ``root`` by run id; a class's own failure is an outcome."""
        from . import jobs  # looked up when called: the one function, whatever patches or wraps it

        try:
            outcome = jobs.compute_class(
                self.prepared, name, bundle_target(Path(root), by_run_id=True),
                lambda run_id: not force and run_id in complete, reuse=not force, request_key=request_key,
                progress=False,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of this class is reported, the others go on
            return ClassOutcome(name=name, status="failed", error=one_line(exc))
        return dataclasses.replace(outcome, bundle=None)  # the driver reads the bundle from disk

    def pid(self) -> int:
        return os.getpid()


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user reads: the package's own message, else type and first line."""
    from .errors import NeurflowGraphError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, NeurflowGraphError) else f"{type(exc).__name__}: {text}"


@dataclass(frozen=True)
class PoolShape:
    """How many actors, and what each asks Ray for: a GPU share and CPUs."""

    workers: int
    gpus: float
    cpus: float


def pool_shape(resources: dict[str, float], options: RayOptions, n_classes: int) -> PoolShape:
    """The pool for a cluster's ``resources`` (``ray.cluster_resources()``): one worker per GPU by default.

    A GPU worker also asks for a share of the CPUs (one kept for the driver): the per-target clustering, the
    images and the lower maps' transfers run on its CPUs while the GPU computes. A CPU worker asks for one CPU.
    """
    gpus = options.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    cpu_total = float(resources.get("CPU", 1))
    fits = int(resources.get("GPU", 0) / gpus) if gpus > 0 else int(cpu_total)
    workers = max(1, min(options.workers or max(1, fits), n_classes))
    cpus = max(1.0, float((cpu_total - 1) // workers)) if gpus > 0 else 1.0
    return PoolShape(workers=workers, gpus=gpus, cpus=cpus)


def worker_device(device: str, gpus: float) -> str:
    """The device a worker runs the recipe's ``device`` on: Ray shows an actor only its own GPU, as ``cuda:0``.

    ``auto`` is ``cuda:0`` for a worker holding a GPU share, else ``cpu``; ``cuda`` or ``cuda:N`` (the index
    counts the driver's GPUs, which Ray assigns) is the worker's ``cuda:0``; a CUDA device for workers without a
    GPU share is a one-line error.
    """
    from neurflow_graph.engine.devices import resolve_device

    if device == "auto":
        return "cuda:0" if gpus > 0 else "cpu"
    if device.startswith("cuda"):
        if gpus <= 0:
            raise ConfigError(f"the recipe's device {device!r} needs GPU workers, but the workers get no GPU; "
                              "pass --gpus-per-worker 1 (or more) or set device = 'cpu'")
        return "cuda:0"
    return str(resolve_device(device))


def _key_device(device: str) -> Any:
    """The workers' device as the driver names it for request keys (no forward runs there: the device only
    resolves ``auto`` precision as the workers do, so a driver without a GPU needs none)."""
    import torch

    return torch.device(device)


def ingest_on_ray(
    recipe: Recipe,
    conn: Connection,
    classes: Sequence[str] | None = None,
    force: bool = False,
    *,
    bundles: str | os.PathLike,
    options: RayOptions = RayOptions(),
    progress: bool = True,
    log: Log = lambda _msg: None,
    on_class: Callable[[ClassOutcome], None] = lambda _outcome: None,
) -> IngestReport:
    """Compute ``classes`` on a pool of Ray actors and store each finished bundle while others compute.

    Classes whose request is complete in the store are skipped on the driver before any worker starts (and a
    worker skips a class whose run id is); bundles go to ``bundles/RUN_ID`` (a path every node sees) and a
    complete one is reused. A dead worker is restarted and its class retried
    ``options.max_retries`` times; a class that fails for its own reasons is reported and the rest go on.
    """
    from tqdm.auto import tqdm

    from neurflow_graph.models.presets import get_preset

    from .recipes import class_index_of, prepare_model

    if "://" in str(bundles):
        raise ConfigError(f"--bundles {bundles}: give a directory every Ray node can see (a shared filesystem "
                          "path); URIs are not supported")
    ray = import_ray()
    names = list(classes or recipe.classes)
    class_names = get_preset(recipe.preset).class_names()
    for name in names:  # a wrong class is the user's mistake: say so before starting anything
        class_index_of(name, class_names)
    root = str(Path(bundles).resolve())
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, logging_level="WARNING", log_to_driver=False)
    actors: list[Any] = []
    counts = dict.fromkeys(("computed", "stored", "skipped", "failed"), 0)
    outcomes: dict[int, ClassOutcome] = {}
    try:
        complete = CompleteRuns() if force else complete_runs(conn)
        shape = pool_shape(ray.cluster_resources(), options, len(names))
        n_workers, gpus = shape.workers, shape.gpus
        on_worker = worker_device(recipe.params.device, gpus)
        worker_recipe = recipe.with_overrides(device=on_worker)
        check = skip_complete_requests(names, complete, lambda: prepare_model(recipe),  # on_class tells each
                                       _key_device(on_worker))
        skipped = check.skipped
        queue = deque((i, name) for i, name in enumerate(names) if i not in skipped)
        n_workers = min(n_workers, len(queue))
        log(f"ray: {n_workers} workers ({gpus:g} GPU each) for {len(queue)} classes ({len(skipped)} skipped "
            f"before scheduling); {shape.cpus:g} CPUs per worker; bundles in {root}")
        worker = ray.remote(max_restarts=options.max_retries, max_task_retries=options.max_retries)(ClassWorker)
        actors = [worker.options(num_cpus=shape.cpus, num_gpus=gpus).remote(worker_recipe) for _ in range(n_workers)]
        pending: dict[Any, tuple[int, str, Any]] = {}

        def submit(actor: Any) -> None:
            if queue:
                i, name = queue.popleft()
                pending[actor.compute.remote(name, root, complete.run_ids, force, check.keys.get(i))] = (i, name, actor)

        for actor in actors:
            for _ in range(IN_FLIGHT_PER_WORKER):
                submit(actor)
        with tqdm(total=len(names), desc="classes", unit="class", disable=not progress) as bar:
            for i, outcome in skipped.items():  # counted at once: no worker sees them
                counts["skipped"] += 1
                outcomes[i] = outcome
                on_class(outcome)
            bar.set_postfix(counts, refresh=False)
            bar.update(len(skipped))
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i, name, actor = pending.pop(ref)
                submit(actor)  # keep the worker busy while this class is stored
                outcome = _settle(ray, ref, name, conn, options)
                counts["computed"] += outcome.computed
                counts[outcome.status] += 1
                bar.set_postfix(counts, refresh=False)
                bar.update()
                outcomes[i] = outcome
                on_class(outcome)
    finally:
        for actor in actors:  # Ctrl-C and errors included: no worker outlives the job
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()
    return IngestReport(tuple(outcomes[i] for i in sorted(outcomes)))


def _settle(ray: Any, ref: Any, name: str, conn: Connection, options: RayOptions) -> ClassOutcome:
    """The class's outcome from its finished task, stored through the single writer when it has a bundle."""
    from .jobs import stored

    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayActorError as exc:
        return ClassOutcome(name=name, status="failed",
                            error=f"its worker died {options.max_retries + 1} times ({type(exc).__name__})")
    except ray.exceptions.RayTaskError as exc:
        return ClassOutcome(name=name, status="failed", error=one_line(exc.cause or exc))
    if outcome.bundle_dir is None:
        return outcome
    return stored(outcome, store_bundle(conn, outcome.bundle_dir))
