"""The one-shot GPU check runs as it would on a bare lent GPU machine.

The mimic is a virtual environment holding only packages a lent machine has (CPU torch in place of its CUDA
build; no neo4j, Captum or arcadedb-embedded), plus the wheels folder that ``make gpu-wheels`` builds, installed
by ``gpu_check.sh`` into a target folder as it would be there. It is kept in the cache between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# From the lent machine's package list (/work/.library/device/KINDS.md in the workplace this was written in),
# what the package and the check need; matplotlib and packaging are Captum's needs, also on that list.
LENT = ["numpy", "scikit-learn", "scikit-image", "pyarrow", "click", "pandas", "networkx", "tqdm", "pytest",
        "matplotlib", "packaging"]


def _mimic(tmp_path_factory) -> Path:
    """A venv of only the lent machine's packages (built once, kept in the cache); its python."""
    constraints = (ROOT / "constraints.txt").read_text()
    key = hashlib.sha256((constraints + " ".join(LENT) + sys.version).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("NEURFLOW_GRAPH_CACHE_DIR") or tmp_path_factory.mktemp("cache"))
    venv = cache / f"gpu-mimic-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
                        "torch==2.13.0", "torchvision", *LENT], check=True, timeout=900)
        (venv / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def mimic(tmp_path_factory):
    return _mimic(tmp_path_factory)


@pytest.mark.slow
def test_gpu_check_tiny_runs_in_a_bare_mimic_of_the_lent_machine(mimic, tmp_path):
    for missing in ("neo4j", "captum", "arcadedb_embedded"):
        gone = subprocess.run([str(mimic), "-c", f"import {missing}"], capture_output=True)
        assert gone.returncode != 0, f"{missing} must not be in the mimic"
    # The engine imports there from the checkout alone (no install, no store driver).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    imported = subprocess.run([str(mimic), "-c", "import neurflow_graph.engine.pipeline"], cwd=ROOT,
                              env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-2000:]
    wheels = tmp_path / "whl"
    subprocess.run(["make", "-s", "gpu-wheels", f"WHEELS={wheels}"], cwd=ROOT, check=True, timeout=300)
    assert list(wheels.glob("captum-*.whl"))
    out = tmp_path / "gpu"
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(out), "--tiny"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1500,
                          env={**env, "PYTHON": str(mimic), "GPU_CHECK_WHEELS": str(wheels),
                               "GPU_CHECK_SITE": str(tmp_path / "site")})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert (tmp_path / "site" / "captum").is_dir()  # the wheels were installed into the target folder
    figures = json.loads((out / "gpu_check.json").read_text())
    assert figures["cuda_tests"].startswith("passed")
    for stage in ("transition", "backward", "circuit"):
        assert figures[f"{stage}_status"].startswith("done"), figures[f"{stage}_status"]
    transition = figures["transition"]
    assert transition["authors_s"] > 0 and transition["fp32_s"] > 0 and transition["bf16_s"] > 0  # Captum ran
    assert 0 <= transition["bf16_top_identical"] <= transition["targets"]
    for row in figures["backward"]["slots"].values():
        assert row["max_rel_diff"] <= 1e-6 and row["loop_calls"] > row["batched_calls"]
    circuit = figures["circuit"]
    assert [row["layer"] for row in circuit["per_layer"]] == circuit["layers"][:-1]
    assert all(row["targets"] >= 1 and row["authors_projected_s"] > 0 for row in circuit["per_layer"])
    assert all(row["folded"] for row in circuit["per_layer"])  # ResNet50's batch norms fold in strict fp32
    assert circuit["precision"] == "fp32" and circuit["device"] == "cpu"
    assert set(circuit["stage_seconds"]) >= {"activations", "circuit", "groups"}
    assert "stage circuit: exit 0" in (out / "gpu_check.log").read_text()


@pytest.mark.slow
def test_each_stage_merges_its_figures_into_the_json_at_once(tmp_path):
    """A stage adds to what earlier stages wrote (a later stage cut off loses nothing before it)."""
    out = tmp_path / "gpu"
    out.mkdir()
    (out / "gpu_check.json").write_text(json.dumps({"cuda_tests": "passed (exit 0)"}))
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", str(out), "--stage", "backward", "--tiny"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((out / "gpu_check.json").read_text())
    assert figures["cuda_tests"] == "passed (exit 0)" and figures["backward_status"].startswith("done")
    assert figures["backward"]["slots"] and "environment" in figures and "circuit" not in figures
