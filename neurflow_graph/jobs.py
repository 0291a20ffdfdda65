"""The plan of a class and the job API: ingest a recipe's classes into a graph store.

``class_job`` plans one class (its images read and filtered once, its run id and request key). The one place
that decides, per class, whether to skip it (its request or its run is complete in the store),
reuse a bundle already on disk, compute it, write its bundle and store it. ``compute_class`` is the one
function that computes a class: ``run``, ``ingest``, ``evaluate`` (``subject_from_recipe``) and the Ray workers
(``neurflow_graph.distributed``) call it; skipping a complete run and reusing a bundle are its policies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from neurflow_graph.errors import NeurflowGraphError
from neurflow_graph.ids import slug

if TYPE_CHECKING:
    import torch

    from neurflow_graph.bundle.tables import BundleTables
    from neurflow_graph.engine.pipeline import Bundle, ModelSpec, NeurFlow
    from neurflow_graph.evaluation.subject import Subject
    from neurflow_graph.models.images import ImageSet

    from .recipes import PreparedModel, Recipe
    from .store.connection import Connection
    from .store.writer import WriteReport

OutcomeStatus = Literal["skipped", "computed", "reused", "stored", "failed"]
Log = Callable[[str], None]


@dataclass(frozen=True)
class ClassOutcome:
    """What happened to one class: skipped, computed or reused (bundle on disk), stored, or failed."""

    name: str
    status: OutcomeStatus
    class_index: int | None = None
    class_name: str | None = None
    run_id: str | None = None
    kept: int = 0
    dropped: int = 0
    bundle_dir: Path | None = None
    computed: bool = False  # the engine ran for it in this job (not skipped, not reused)
    skipped_by: Literal["request", "run"] | None = None  # request: before scheduling, no image filtered
    write: WriteReport | None = None
    error: str | None = None
    bundle: Bundle | None = field(default=None, repr=False, compare=False)  # in-process runs only


@dataclass(frozen=True)
class IngestReport:
    """Every class of an ingest job and what happened to it."""

    outcomes: tuple[ClassOutcome, ...]

    def count(self, status: OutcomeStatus) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def computed(self) -> int:
        return sum(o.computed for o in self.outcomes)

    @property
    def failed(self) -> tuple[ClassOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")


# -- the plan: one class of a recipe, ready to compute ------------------------------------------------


def request_key_of(prepared: PreparedModel, class_index: int, device, loaded: ImageSet | None = None) -> str:
    """The request key of a class run on ``device`` (``ids.request_key``): ``params.run_identity`` of the
    candidate images (before filtering) and the parameters as the run records them, plus ``max_images``.

    No model forward: what decides the result before the filter, so a driver knows it without computing.
    """
    from neurflow_graph.engine.params import run_identity
    from neurflow_graph.engine.pipeline import NeurFlow
    from neurflow_graph.ids import request_key

    from .image_sources import candidate_sha256

    spec = prepared.model_spec()
    params = NeurFlow(prepared.recipe.params, progress=False).recorded_params(spec, device)  # as the run's id
    identity = run_identity(spec.name, spec.identity(), spec.weights_digest(), spec.layers, class_index,
                            candidate_sha256(prepared, class_index, loaded), params)
    request = {**identity, "images": {"candidates": identity["images"],
                                      "max_images": prepared.recipe.images.max_images}}
    return request_key(spec.name, class_index, request)


@dataclass(frozen=True)
class ClassJob:
    """One class of a recipe, ready to run: its images (already filtered by prediction) and its run id."""

    prepared: PreparedModel
    class_index: int
    class_name: str
    images: ImageSet
    dropped: int
    spec: ModelSpec
    flow: NeurFlow
    run_id: str
    request_key: str | None = None  # request_key_of: recorded in run.json, so a later job skips the class unfiltered

    def run(self) -> Bundle:
        """Compute the bundle (the heavy part); its run.json records the request key after the run id."""
        from .image_sources import image_source_record

        bundle = self.flow.run(
            self.spec, self.class_index, self.images.images, self.images.sha256, class_name=self.class_name,
            image_provenance={"dropped": self.dropped, "unreadable": list(self.images.unreadable),
                              "sources": list(self.images.sources), "recipe": self.prepared.recipe.name,
                              "source": image_source_record(self.prepared.recipe.images)},
        )
        if self.request_key is None:
            return bundle
        return replace(bundle, meta=bundle.meta.with_request_key(self.request_key))

    def describe(self) -> str:
        """One line: the images kept, those dropped (not predicted as the class) and the unreadable files skipped."""
        skipped = self.images.unreadable
        names = ", ".join(Path(f).name for f in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        line = (f"class {self.class_index} ({self.class_name}): kept {len(self.images)} images predicted as the "
                f"class, dropped {self.dropped}")
        line += f", skipped {len(skipped)} unreadable ({names})" if skipped else ""
        note = self.prepared.tau_note()
        return line if note is None else f"{note}\n{line}"


def class_job(prepared: PreparedModel, class_name: str, progress: bool = True,
              request_key: str | None = None) -> ClassJob:
    """Resolve the class, load and filter its images, and work out the run id, without the heavy work.

    ``request_key``: the class's request key when the caller computed it already (else computed here, once)."""
    from neurflow_graph.engine.pipeline import NeurFlow, resolve_device

    from .image_sources import predicted_images, source_images
    from .recipes import class_index_of

    recipe = prepared.recipe
    class_index = class_index_of(class_name, prepared.class_names)
    device = resolve_device(recipe.params.device)
    candidates = source_images(prepared, recipe.images, class_index, recipe.params.seed)
    request = request_key or request_key_of(prepared, class_index, device, candidates)
    images, dropped = predicted_images(prepared, candidates, class_index, device)
    spec = prepared.model_spec()
    flow = NeurFlow(recipe.params, progress=progress)
    return ClassJob(prepared, class_index, prepared.class_names[class_index], images, dropped, spec, flow,
                    flow.run_id(spec, class_index, images.sha256), request)


# -- the parts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompleteRuns:
    """The runs complete in the store: their ids, and the run of each request key they record."""

    run_ids: frozenset[str] = frozenset()
    by_request: Mapping[str, str] = field(default_factory=dict)  # request key -> run id


def complete_runs(conn: Connection) -> CompleteRuns:
    """The runs complete in the store, by id and by request key, in one query (read once, before scheduling)."""
    rows = conn.run("complete_runs")
    return CompleteRuns(frozenset(r["run_id"] for r in rows),
                        {r["request_key"]: r["run_id"] for r in rows if r["request_key"]})


@dataclass(frozen=True)
class RequestCheck:
    """What checking request keys before scheduling found: the classes to skip (by position), and the request
    key of every class it computed, handed to ``compute_class`` so a class's key is computed once."""

    skipped: dict[int, ClassOutcome] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)


def skip_complete_requests(
    names: Sequence[str],
    complete: CompleteRuns,
    prepare: Callable[[], PreparedModel],
    device: torch.device,
    log: Log = lambda _msg: None,
) -> RequestCheck:
    """The classes of ``names`` (by position) whose request key (``request_key_of`` on ``device``) is
    that of a run complete in the store, as skipped outcomes: decided before scheduling, with no model forward.

    ``prepare()`` builds the model (its weights digest is in the key) only when the store records request keys.
    """
    from .recipes import class_index_of

    if not complete.by_request:
        return RequestCheck()
    prepared = prepare()
    check = RequestCheck()
    for i, name in enumerate(names):
        index = class_index_of(name, prepared.class_names)
        try:
            key = request_key_of(prepared, index, device)
        except (OSError, NeurflowGraphError):
            continue  # the class's own problem (an unreadable folder): computing it reports that
        check.keys[i] = key
        if key in complete.by_request:
            run_id = complete.by_request[key]
            log(f"class {index} ({prepared.class_names[index]}): request already complete in the store; skipped "
                   f"before its images are filtered (use --force to recompute); run {run_id}")
            check.skipped[i] = ClassOutcome(name=name, status="skipped", class_index=index,
                                            class_name=prepared.class_names[index], run_id=run_id,
                                            skipped_by="request")
    return check


def run_is_complete(conn: Connection, run_id: str) -> bool:
    """Whether the store holds this run completely (an interrupted ingest is incomplete)."""
    status = conn.run("run_status", run_id=run_id)
    return bool(status and status[0]["complete"])


def compute_class(
    prepared: PreparedModel,
    name: str,
    target: Callable[[ClassJob], Path] | str | os.PathLike,
    skip: Callable[[str], bool] = lambda _run_id: False,
    *,
    reuse: bool = False,
    larger_tau: bool = False,
    request_key: str | None = None,
    progress: bool = True,
    log: Log = lambda _msg: None,
) -> ClassOutcome:
    """The one path that computes a class (``run``, ``ingest``, ``evaluate``, Ray workers): plan it, then skip
    it (``skip(run_id)``), reuse its complete bundle, or compute, measure and write it.

    ``target`` is the bundle directory, or ``target(job)`` gives it; bundles are written atomically (complete
    or absent). Policies: ``reuse`` a complete bundle of the same run at the target; ``larger_tau`` also
    reuses one whose tau is larger (the same run otherwise; smaller taus are pruned from it) and returns it in
    memory with the job's own images (``evaluate``). ``request_key``: the class's key when the caller has it.
    """
    from neurflow_graph.bundle.files import write_bundle

    job = class_job(prepared, name, progress=progress, request_key=request_key)
    log(f"{job.describe()}; run {job.run_id}")
    known = {"name": name, "class_index": job.class_index, "class_name": job.class_name, "run_id": job.run_id,
             "kept": len(job.images), "dropped": job.dropped}
    if skip(job.run_id):
        log("  already complete in the store; skipped (use --force to recompute)")
        return ClassOutcome(status="skipped", skipped_by="run", **known)
    path = target(job) if callable(target) else Path(target)
    reused = _reusable_run_id(path, job, larger_tau) if reuse else None
    if reused is not None:
        known["run_id"] = reused
        if not _faithfulness_current(path, job.prepared.recipe.faithfulness):
            bundle = _remeasured(job, path, log)
            log(f"  complete bundle found in {path}; its circuit reused, its faithfulness measured and added")
            return ClassOutcome(status="reused", bundle_dir=path, bundle=bundle, **known)
        log(f"  complete bundle found in {path}; reused, not recomputed")
        bundle = _with_job_images(path, job) if larger_tau else None
        return ClassOutcome(status="reused", bundle_dir=path, bundle=bundle, **known)
    bundle = measure_faithfulness_stage(job, job.run(), log)
    write_bundle(bundle, path)
    log(f"bundle written to {path}")
    return ClassOutcome(status="computed", bundle_dir=path, computed=True, bundle=bundle, **known)


def _reusable_run_id(path: Path, job: ClassJob, larger_tau: bool) -> str | None:
    """The run id of the complete bundle at ``path`` when it may stand for ``job``'s run, else None.

    The same run (its id) always; with ``larger_tau``, also a run with a larger tau whose id is the one these
    inputs give once the job's tau is replaced by the bundle's (``params.run_identity``, the one definition).
    """
    from neurflow_graph.bundle.files import read_run_meta
    from neurflow_graph.engine.pipeline import NeurFlow

    try:
        meta = read_run_meta(path / "run.json")
    except (NeurflowGraphError, OSError):
        return None
    if meta.run_id == job.run_id:
        return meta.run_id
    if not larger_tau or meta.params.tau < job.prepared.recipe.params.tau:
        return None
    flow = NeurFlow(job.prepared.recipe.params, progress=False, tau=meta.params.tau)
    return meta.run_id if flow.run_id(job.spec, job.class_index, job.images.sha256) == meta.run_id else None


def _with_job_images(path: Path, job: ClassJob) -> Bundle:
    """The bundle at ``path`` holding the job's own images (not the bundle's 8-bit copies), as a fresh run would."""
    from neurflow_graph.bundle.files import read_bundle

    bundle = read_bundle(path)
    return replace(bundle, patches=replace(bundle.patches, images=job.images.images))


def measure_faithfulness_stage(job: ClassJob, bundle: Bundle, log: Log = lambda _msg: None) -> Bundle:
    """The bundle with its circuit's faithfulness (evaluation.faithfulness) in run.json, at the recipe's level.

    Measured on the run's own images and device before the bundle is written, so a bundle, and the run in the
    store, is complete only with its figures; its time joins ``stage_seconds`` as ``faithfulness``. The settings
    are not part of the run id: they decide what is measured about the circuit, not the circuit.
    """
    from neurflow_graph.engine.pipeline import resolve_device
    from neurflow_graph.evaluation.faithfulness import measure_faithfulness
    from neurflow_graph.evaluation.subject import Subject

    settings, params = job.prepared.recipe.faithfulness, job.prepared.recipe.params
    if not settings.on:
        return bundle
    subject = Subject(spec=job.spec, meta=bundle.meta, patches=bundle.patches, circuit=bundle.circuit,
                      device=resolve_device(params.device), batch_size=params.batch_size)
    started = time.perf_counter()
    measured = measure_faithfulness(subject, settings, params.memory_budget_mb, log)
    record = measured.record()
    if settings.level == "groups":
        from neurflow_graph.debugging.faithfulness import group_faithfulness

        record["groups"] = group_faithfulness(subject, bundle.groups, settings)
    seconds = round(time.perf_counter() - started, 3)
    circuit = sum(bundle.meta.stage_seconds.values())
    log(f"  faithfulness measured in {seconds:.1f} s "
        f"({100 * seconds / max(circuit, 1e-9):.1f}% of the circuit's {circuit:.1f} s)")
    return replace(bundle, meta=bundle.meta.with_faithfulness(record, seconds))


def _faithfulness_current(path: Path, settings) -> bool:
    """Whether the bundle at ``path`` holds the faithfulness these settings ask for (or they ask for none)."""
    from neurflow_graph.bundle.files import read_run_meta

    if not settings.on:
        return True
    measured = read_run_meta(path / "run.json").faithfulness
    return measured is not None and (measured.level, measured.sets, measured.seed) == (settings.level, settings.sets,
                                                                                       settings.seed)


def _remeasured(job: ClassJob, path: Path, log: Log) -> Bundle:
    """The bundle at ``path`` with its faithfulness measured on the job's own images (not the bundle's 8-bit
    copies, so the figures equal a fresh run's) and written back atomically."""
    from neurflow_graph.bundle.files import write_bundle

    bundle = _with_job_images(path, job)
    bundle = measure_faithfulness_stage(job, replace(bundle, meta=bundle.meta.without_faithfulness()), log)
    write_bundle(bundle, path)
    return bundle


def store_bundle(conn: Connection, bundle: Path | BundleTables, progress: bool = False) -> WriteReport:
    """Write one bundle (its directory, or its tables already checked) into the store through its single writer
    (the writer lock), with a batch bar."""
    from tqdm.auto import tqdm

    from neurflow_graph.store.writer import write_run

    with tqdm(desc="store", unit="batch", disable=not progress, leave=False) as bar:
        return write_run(conn, bundle, on_batch=lambda _q, _i: bar.update())


def store_unless_complete(conn: Connection, run_id: str, bundle_dir: Path) -> WriteReport | None:
    """Store a bundle whose run is not complete in the store yet; None when it already is."""
    return None if run_is_complete(conn, run_id) else store_bundle(conn, bundle_dir)


def store_evaluations(conn: Connection, records: Sequence[dict], bundle_dirs: Sequence[Path]) -> Iterator[dict]:
    """Store each evaluation record as an Evaluation node linked to its Run, storing the run's bundle first
    when it is not complete in the store; under the writer lock, as `ingest` and `load`. Yields each record stored."""
    from neurflow_graph.bundle.files import read_run_meta
    from neurflow_graph.evaluation.record import store_evaluation

    bundles = {read_run_meta(d / "run.json").run_id: d for d in bundle_dirs if (d / "run.json").is_file()}
    with conn.writing():
        for record in records:
            if record["run_id"] in bundles:
                store_unless_complete(conn, record["run_id"], bundles[record["run_id"]])
            store_evaluation(conn.run, record)
            yield record


def stored(outcome: ClassOutcome, write: WriteReport) -> ClassOutcome:
    """The outcome of a class once its bundle is in the store."""
    return replace(outcome, status="stored", write=write)


def bundle_target(root: Path, by_run_id: bool) -> Callable[[ClassJob], Path]:
    """Where a class's bundle goes: ``ROOT/CLASS`` (``--out``) or ``ROOT/RUN_ID`` (``--bundles``, reusable)."""
    return (lambda job: root / job.run_id) if by_run_id else (lambda job: root / slug(job.class_name))


# -- the job ------------------------------------------------------------------------------------------


def ingest(
    recipe: Recipe,
    conn: Connection,
    classes: Sequence[str] | None = None,
    force: bool = False,
    *,
    out: str | os.PathLike | None = None,
    by_run_id: bool = False,
    progress: bool = True,
    log: Log = lambda _msg: None,
    on_class: Callable[[ClassOutcome], None] = lambda _outcome: None,
) -> IngestReport:
    """Ingest ``classes`` (default the recipe's) of ``recipe`` into ``conn``, in this process, one by one.

    Classes complete in the store are skipped unless ``force``: first by request key, before any image is
    read (``skip_complete_requests``), then by run id once a class's images are filtered. The model is loaded
    once. Bundles go to ``out`` (default ``runs/RECIPE``); ``on_class`` sees each class's outcome once it is
    settled (the classes skipped by request first).
    """
    from neurflow_graph.engine.pipeline import resolve_device

    from .recipes import prepare_model

    root = Path(out) if out else Path("runs") / recipe.name
    names = list(classes or recipe.classes)
    prepared = prepare_model(recipe)
    complete = CompleteRuns() if force else complete_runs(conn)
    check = skip_complete_requests(names, complete, lambda: prepared, resolve_device(recipe.params.device), log)
    outcomes = dict(check.skipped)
    for outcome in outcomes.values():
        on_class(outcome)
    for i, name in enumerate(names):
        if i in outcomes:
            continue
        outcome = compute_class(
            prepared, name, bundle_target(root, by_run_id), lambda run_id: not force and run_is_complete(conn, run_id),
            reuse=by_run_id and not force, request_key=check.keys.get(i), progress=progress, log=log,
        )
        if outcome.bundle_dir is not None:
            outcome = stored(outcome, store_bundle(conn, outcome.bundle_dir, progress))
        on_class(outcome)
        outcomes[i] = outcome
    return IngestReport(tuple(outcomes[i] for i in range(len(names))))


def subject_from_recipe(prepared: PreparedModel, class_name: str, tau: int, cache_dir: str | os.PathLike,
                        progress: bool = False, log: Log = lambda _msg: None) -> Subject:
    """An evaluation subject for one class of a prepared recipe with at least ``tau`` core neurons per target:
    ``compute_class`` with the larger-tau reuse policy, its bundle in ``cache_dir``.

    The run's tau is the larger of ``tau`` and the recipe's; a bundle in ``cache_dir`` of the same run with a
    tau at least that large is reused (``evaluate`` prunes smaller taus from it), else the class is computed.
    """
    from neurflow_graph.engine.pipeline import resolve_device
    from neurflow_graph.evaluation.subject import Subject

    recipe = prepared.recipe
    run_tau = max(tau, recipe.params.tau)
    prepared = replace(prepared, recipe=recipe.with_overrides(tau=run_tau))
    outcome = compute_class(prepared, class_name, cache_dir, reuse=True, larger_tau=True, progress=progress,
                            log=log)
    if outcome.status == "reused":
        log(f"class {outcome.class_index} ({outcome.class_name}): reusing the run in {cache_dir}")
    bundle = outcome.bundle
    return Subject(spec=prepared.model_spec(), meta=bundle.meta, patches=bundle.patches,
                   circuit=bundle.circuit, device=resolve_device(recipe.params.device),
                   batch_size=recipe.params.batch_size)


def select_classes(recipe: Recipe, classes: str | None = None, classes_file: str | os.PathLike | None = None,
                   ) -> tuple[str, ...]:
    """The classes to ingest: ``all`` (every class of the model), a comma-separated list, or a file of them.

    A file holds one class name or index a line (``#`` starts a comment). Neither: the recipe's classes.
    """
    from .errors import ConfigError

    if classes is not None and classes_file is not None:
        raise ConfigError("give --classes or --classes-file, not both")
    if classes_file is not None:
        try:
            lines = Path(classes_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--classes-file {classes_file}: cannot read it ({exc.strerror})") from None
        chosen = tuple(c for line in lines if (c := line.split("#", 1)[0].strip()))
        if not chosen:
            raise ConfigError(f"--classes-file {classes_file} names no class; write one name or index a line")
        return chosen
    if classes is None:
        return recipe.classes
    if classes.strip().lower() == "all":
        return all_classes(recipe)
    chosen = tuple(c.strip() for c in classes.split(",") if c.strip())
    if not chosen:
        raise ConfigError("--classes is empty; give 'all' or a comma-separated list of names or indices")
    return chosen


def all_classes(recipe: Recipe) -> tuple[str, ...]:
    """Every class of the recipe's model, as indices; on an ImageFolder tree, every class folder with images."""
    from neurflow_graph.models.presets import get_preset

    from .image_sources import classes_present

    n_classes = len(get_preset(recipe.preset).class_names())
    if recipe.images.source == "folder" and recipe.images.layout == "imagefolder":
        return tuple(str(i) for i in classes_present(recipe, n_classes))
    return tuple(str(i) for i in range(n_classes))
