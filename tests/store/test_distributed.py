"""``ingest --ray`` on a local Ray started by the test: same graph as in-process, retried, reported, resumable."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.store import connect

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

SMALL = {"k": 10, "tau": 3, "n_steps": 8, "max_images": 3}
SMALL_RUN = ["--k", "10", "--tau", "3", "--steps", "8", "--max-images", "3", "--quiet"]  # the same, as options
GOOD = ("1", "2", "4")
VOLATILE = ("_at", "bundle_path", "run_json", "layer_stats_json")  # timestamps, paths, JSON with durations


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def raylets() -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"]) if any("raylet" in c for c in p.info["cmdline"] or ())}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of two CPUs, dashboard off, shut down at the end with no raylet left behind."""
    before = raylets()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 30
        while raylets() - before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not raylets() - before, "a raylet outlived ray.shutdown()"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, digits_model, digits_preset) -> Path:
    """A folder recipe: real digits images of GOOD classes, and a folder '3' of images no one predicts as 3."""
    import torch
    from PIL import Image

    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.models.images import load_image_folder

    root = tmp_path_factory.mktemp("digits-folder")
    for name in (*GOOD, "3"):
        source = 7 if name == "3" else int(name)  # folder 3 holds sevens
        (root / name).mkdir()
        images, _ = digits_images(source, split="test")
        for i, image in enumerate(images[:8]):
            Image.fromarray((image[0] * 255).round().byte().numpy(), mode="L").save(root / name / f"{i}.png")
    loaded = load_image_folder(root, "3", digits_preset.input_size, digits_preset.in_channels)
    with torch.no_grad():
        predicted = digits_model(digits_preset.normalize(loaded.images)).argmax(1)
    for source, label in zip(loaded.sources, predicted.tolist(), strict=True):
        if label == 3:
            Path(source).unlink()
    assert any((root / "3").iterdir()), "every seven was predicted as 3: no folder for a failing class"
    path = root / "digits-folder.toml"
    path.write_text(f'[model]\npreset = "digits"\nweights = "DIGITS_V1"\n\n[images]\nsource = "folder"\n'
                    f'path = "{root}"\n\n[run]\nclasses = ["1"]\nseed = 0\ndevice = "cpu"\n')
    return path


def graph_dump(data_dir, database: str) -> tuple[list, list]:
    """Every node and relationship with its properties (timestamps, durations and paths aside), sorted."""
    def keep(props: dict) -> str:
        kept = {k: v for k, v in props.items() if not k.endswith(VOLATILE) and "seconds" not in k}
        return json.dumps(kept, sort_keys=True, default=str)

    with connect(data_dir, database=database) as conn:
        nodes = conn.driver.execute_query("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props",
                                          database_=conn.database).records
        rels = conn.driver.execute_query(
            "MATCH (a)-[r]->(b) RETURN type(r) AS type, a.id AS start, b.id AS end, properties(r) AS props",
            database_=conn.database).records
    return (sorted((sorted(r["labels"]), keep(r["props"])) for r in nodes),
            sorted((r["type"], str(r["start"]), str(r["end"]), keep(r["props"])) for r in rels))


def assert_same_graph(got: tuple[list, list], want: tuple[list, list]) -> None:
    """Equal dumps, else the first few elements on each side that the other lacks."""
    for kind, a, b in zip(("nodes", "relationships"), got, want, strict=True):
        extra, missing = [x for x in a if x not in b], [x for x in b if x not in a]
        assert not extra and not missing, f"{kind}: only in ray {extra[:3]}; only in sequential {missing[:3]}"
        assert len(a) == len(b), kind


@pytest.fixture(scope="module")
def sequential(recipe, data_dir, tmp_path_factory) -> tuple[list, list]:
    """The graph of the GOOD classes ingested in-process, one after another."""
    database = "seq_reference"
    out = tmp_path_factory.mktemp("seq-bundles")
    result = invoke("ingest", recipe, "--classes", ",".join(GOOD), "--out", out, "--data-dir", data_dir,
                    "--database", database, *SMALL_RUN)
    assert result.exit_code == 0, result.output
    return graph_dump(data_dir, database)


def test_ray_ingest_gives_the_sequential_graph_then_skips_every_class(
        local_ray, recipe, sequential, data_dir, database_name, tmp_path):
    store = ["--data-dir", data_dir, "--database", database_name]
    first = invoke("ingest", recipe, "--classes", ",".join(GOOD), "--ray", "--bundles", tmp_path, *store, *SMALL_RUN)
    assert first.exit_code == 0, first.output
    assert f"computed {len(GOOD)}, stored {len(GOOD)}, skipped 0, failed 0" in first.output
    assert_same_graph(graph_dump(data_dir, database_name), sequential)
    assert len([p for p in tmp_path.iterdir() if (p / "run.json").is_file()]) == len(GOOD)  # one per run id

    again = invoke("ingest", recipe, "--classes", ",".join(GOOD), "--ray", "--bundles", tmp_path, *store, *SMALL_RUN)
    assert again.exit_code == 0, again.output
    assert f"computed 0, stored 0, skipped {len(GOOD)}, failed 0" in again.output
    # skipped on the driver by request key: no worker was started, no class scheduled
    assert f"ray: 0 workers (0 GPU each) for 0 classes ({len(GOOD)} skipped before scheduling)" in again.output
    assert again.output.count("request already complete in the store; skipped before scheduling") == len(GOOD)
    assert_same_graph(graph_dump(data_dir, database_name), sequential)


def test_a_changed_parameter_is_not_skipped_on_ray(local_ray, recipe, sequential, data_dir, database_name, tmp_path):
    from neurflow_graph.distributed import ingest_on_ray
    from neurflow_graph.recipes import load_recipe

    spec = load_recipe(recipe).with_overrides(**SMALL)
    with connect(data_dir, database=database_name) as conn:
        first = ingest_on_ray(spec, conn, GOOD[:1], bundles=tmp_path, progress=False)
        again = ingest_on_ray(spec, conn, GOOD[:1], bundles=tmp_path, progress=False)
        changed = ingest_on_ray(spec.with_overrides(tau=2), conn, GOOD[:1], bundles=tmp_path, progress=False)
    assert [(o.status, o.skipped_by) for o in (*first.outcomes, *again.outcomes)] == [("stored", None),
                                                                                    ("skipped", "request")]
    (outcome,) = changed.outcomes
    assert (outcome.status, outcome.computed) == ("stored", True) and outcome.run_id != first.outcomes[0].run_id


def test_a_worker_killed_mid_class_is_replaced_and_its_class_retried(
        local_ray, recipe, sequential, data_dir, database_name, tmp_path):
    from neurflow_graph.distributed import RayOptions, ingest_on_ray
    from neurflow_graph.recipes import load_recipe

    killed: list[int] = []
    done = threading.Event()

    def kill_first_computing_worker() -> None:  # a real SIGKILL of a worker process while it computes a class
        while not done.is_set() and not killed:
            for proc in psutil.process_iter(["cmdline"]):
                if any("ClassWorker.compute" in c for c in proc.info["cmdline"] or ()):
                    proc.kill()
                    killed.append(proc.pid)
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_computing_worker)
    killer.start()
    try:
        with connect(data_dir, database=database_name) as conn:
            report = ingest_on_ray(load_recipe(recipe).with_overrides(**SMALL), conn, GOOD, bundles=tmp_path,
                                   progress=False, options=RayOptions(max_retries=2))
    finally:
        done.set()
        killer.join()
    assert killed, "no worker was seen computing a class"
    assert not report.failed and report.count("stored") == len(GOOD), report
    assert_same_graph(graph_dump(data_dir, database_name), sequential)


def test_a_class_that_cannot_run_is_reported_and_the_others_are_stored(
        local_ray, recipe, sequential, data_dir, database_name, tmp_path):
    store = ["--data-dir", data_dir, "--database", database_name]
    classes = ",".join((*GOOD[:2], "3"))
    result = invoke("ingest", recipe, "--classes", classes, "--ray", "--bundles", tmp_path, *store, *SMALL_RUN)
    assert result.exit_code == 1, result.output
    assert "class 3: FAILED:" in result.output and "predicted" in result.output
    assert result.output.rstrip().splitlines()[-1] == "Error: failed classes: 3"
    assert "stored 2, skipped 0, failed 1" in result.output
    with connect(data_dir, database=database_name) as conn:
        runs = conn.run("list_runs")
    assert sorted(r["class_index"] for r in runs) == sorted(int(c) for c in GOOD[:2])
    assert all(r["complete"] for r in runs)
