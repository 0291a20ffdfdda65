"""One function computes a class: `run`, `ingest`, `evaluate` and the Ray worker all reach `jobs.compute_class`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph import jobs
from neurflow_graph.recipes import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "ingest" / "digits.toml"
SMALL = ["--k", "10", "--steps", "8", "--max-images", "3"]


class Reached(Exception):
    """Raised by the patched function: the path got there, and nothing is computed."""


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """`jobs.compute_class`, patched once for the test: it records the class and the policies it was asked for."""
    calls: list[tuple[str, dict]] = []

    def spy(prepared, name, target, skip=None, **policies):
        calls.append((name, policies))
        raise Reached(name)

    monkeypatch.setattr(jobs, "compute_class", spy)
    return calls


def test_run_reaches_the_one_function(reached, tmp_path):
    from neurflow_graph.cli.main import main

    result = CliRunner().invoke(main, ["run", str(RECIPE), "--out", str(tmp_path / "b"), "--quiet", *SMALL])
    assert isinstance(result.exception, Reached)
    assert [name for name, _ in reached] == ["3"]


def test_ingest_reaches_the_one_function(reached, tmp_path):
    recipe = load_recipe(RECIPE).with_overrides(k=10, n_steps=8, max_images=3)
    with pytest.raises(Reached):  # force: no store is read before the class is computed
        jobs.ingest(recipe, conn=None, classes=["5"], force=True, out=tmp_path, progress=False)
    assert [name for name, _ in reached] == ["5"]


def test_evaluate_reaches_the_one_function_with_the_larger_tau_policy(reached, tmp_path):
    from neurflow_graph.cli.evaluation import evaluate

    result = CliRunner().invoke(evaluate, ["optimality", str(RECIPE), "--out", str(tmp_path), "--tau", "2",
                                           "--no-store", "--quiet", *SMALL])
    assert isinstance(result.exception, Reached)
    [(name, policies)] = reached
    assert name == "3" and policies["reuse"] and policies["larger_tau"]


def test_the_ray_worker_reaches_the_one_function(reached, tmp_path):
    from neurflow_graph.distributed import ClassWorker

    worker = ClassWorker(load_recipe(RECIPE).with_overrides(k=10, n_steps=8, max_images=3))
    outcome = worker.compute("7", str(tmp_path), frozenset(), force=False, request_key="a-key")
    assert outcome.status == "failed" and "Reached" in outcome.error  # a class's failure is its outcome
    [(name, policies)] = reached
    assert name == "7" and policies["request_key"] == "a-key" and policies["reuse"]
