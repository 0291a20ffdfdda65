"""Each benchmark (circuit, request keys, IG memory, allocator, faithfulness, backward calls, clustering) runs end to
end in a tiny mode: none rots.

The GPU check is run by tests/test_gpu_check.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurflow_graph.engine.memory import _glibc

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _run_json(tmp_path, script, *args):
    """A benchmark's printed output and the figures it wrote with ``--json``."""
    path = tmp_path / "figures.json"
    out = _run([sys.executable, script, *args, "--json", str(path)], tmp_path)
    return out, json.loads(path.read_text())


@pytest.mark.slow
def test_circuit_benchmark_tiny(tmp_path):
    out, figures = _run_json(tmp_path, "benchmarks/circuit.py", "--tiny", "--modes", "fp32,bf16,adaptive")
    for mode in ("fp32", "bf16", "adaptive"):
        assert f"ratio {mode}: " in out
        assert 0 <= figures["modes"][mode]["top_identical"] <= figures["targets"]
    assert figures["modes"]["fp32"]["top_identical"] == figures["targets"]  # fp32 against itself
    assert "EXTRAPOLATED" in out and "activations vs plain forward: " in out and "sys/user: " in out
    assert all(row["captum_max_rel_diff"] < 1e-4 for row in figures["per_layer"])  # engine fp32 == Captum
    assert figures["peak_rss_mb"] > figures["model_mb"]
    # the authors' way timed with glibc's settings and keeping freed memory; ratios against the faster per transition
    authors = sum(min(row["authors_s"], row["authors_kept_s"]) for row in figures["per_layer"])
    assert authors > 0 and figures["authors_extrapolated_s"] == pytest.approx(authors)
    fp32 = figures["modes"]["fp32"]
    assert fp32["ratio"] == pytest.approx(authors / fp32["seconds"])
    assert fp32["ratio_glibc"] == pytest.approx(figures["authors_glibc_extrapolated_s"] / fp32["seconds"])


@pytest.mark.slow
def test_request_keys_benchmark_runs(tmp_path):
    out = _run([sys.executable, "benchmarks/request_keys.py", "--images", "3", "--repeats", "1"], tmp_path)
    assert out.count("request_key_s: ") == 3 and out.count("ratio: ") == 3 and "file_sha256_s: " in out


@pytest.mark.slow
def test_ig_memory_benchmark_tiny(tmp_path):
    out = _run([sys.executable, "benchmarks/ig_memory.py", "--tiny"], tmp_path)
    assert out.count("live tensors ") == 2 and "ratio chunks sized vs equal (budget 256 MB): " in out


@pytest.mark.slow
def test_allocator_benchmark_tiny(tmp_path):
    out, figures = _run_json(tmp_path, "benchmarks/allocator.py", "--tiny", "--rounds", "1")
    for stage in ("authors' Captum", "plain forward", "engine activations"):
        assert f"ratio {stage}: " in out
        both = figures["stages"][stage]
        assert both["ratio"] == pytest.approx(both["glibc"]["wall_s"] / both["kept"]["wall_s"])
    if _glibc() is not None:  # the engine's stage keeps freed memory by itself: fewer page faults than without
        stage = figures["stages"]["engine activations"]
        assert stage["kept"]["minor_faults"] < stage["glibc"]["minor_faults"]


@pytest.mark.slow
def test_faithfulness_benchmark_tiny(tmp_path):
    out, figures = _run_json(tmp_path, "benchmarks/faithfulness.py", "--tiny")
    (case,) = figures["cases"]
    assert f"faithfulness cost: {100 * case['share']:.1f}% of the circuit" in out
    assert case["faithfulness_s"] > 0 and case["circuit_s"] > 0
    assert case["within_bound"] == (case["share"] <= 0.10)
    assert [r["layer"] for r in case["layers"]] == ["conv3", "conv2", "conv1"]


@pytest.mark.slow
def test_backward_calls_benchmark_tiny(tmp_path):
    out, figures = _run_json(tmp_path, "benchmarks/backward_calls.py", "--tiny")
    calls = f"backward calls per circuit: loop {figures['loop_calls']}, batched {figures['batched_calls']}"
    assert calls in out
    assert figures["batched_calls"] < figures["loop_calls"] and figures["max_rel_diff"] <= 1e-6
    assert figures["same_cores"]


@pytest.mark.slow
def test_clustering_benchmark_tiny(tmp_path):
    out, figures = _run_json(tmp_path, "benchmarks/clustering.py", "--tiny")
    (size,) = figures["sizes"]
    assert f"find_neuron_groups n={size['n']}: old " in out and "identical groups: yes" in out
    assert size["identical"] and size["groups"] >= 2
