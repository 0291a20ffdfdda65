"""Shared fixtures: the real digits CNN (trained once per session) and one small real NeurFlow run."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Keep the trained digits model in the user's cache when it exists there, else in a session dir."""
    if "NEURFLOW_GRAPH_CACHE_DIR" not in os.environ:
        default = os.path.expanduser("~/.cache/neurflow-graph")
        os.environ["NEURFLOW_GRAPH_CACHE_DIR"] = default if os.access(os.path.dirname(default), os.W_OK) \
            else str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(autouse=True)
def _no_external_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to their own embedded server unless they point NEO4J_URI somewhere themselves, whatever
    NEO4J_* the shell holds."""
    from neurflow_graph.store.connection import STORE_ENV

    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def digits_preset():
    from neurflow_graph.models.presets import get_preset

    return get_preset("digits")


@pytest.fixture(scope="session")
def digits_model(digits_preset):
    torch.manual_seed(0)
    return digits_preset.build(weights="DIGITS_V1")


@pytest.fixture(scope="session")
def digits_class3(digits_model, digits_preset):
    """Held-out images of digit 3 that the model predicts as 3 (real data from scikit-learn)."""
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.models.images import filter_predicted, image_set_from_tensors

    images, _ = digits_images(3, split="test")
    kept, _dropped = filter_predicted(digits_model, image_set_from_tensors(images), 3, digits_preset.normalize)
    return kept.subset(range(12))


@pytest.fixture(scope="session")
def digits_spec(digits_model, digits_preset):
    from neurflow_graph.engine.pipeline import ModelSpec

    return ModelSpec("digits", digits_model, digits_preset.layers, digits_preset.input_size, digits_preset.normalize,
                     provenance={"preset": "digits", "weights": "DIGITS_V1"})


SMALL = dict(k=20, tau=4, n_steps=16, seed=0, device="cpu")


@pytest.fixture(scope="session")
def small_params():
    """Parameters of the small real run (the paper's defaults scaled down for a 2-core test run)."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def digits_bundle(digits_spec, digits_class3):
    """A small but complete real run: digit 3 from fc down to conv1."""
    from neurflow_graph.engine.pipeline import NeurFlow

    return NeurFlow(progress=False, **SMALL).run(digits_spec, 3, digits_class3.images, digits_class3.sha256, "3")


@pytest.fixture(scope="session")
def digits_bundle_dir(digits_bundle, tmp_path_factory):
    """The small real run written to disk as a bundle."""
    from neurflow_graph.bundle.files import write_bundle

    return write_bundle(digits_bundle, tmp_path_factory.mktemp("bundles") / "digits-3")


@pytest.fixture(scope="session")
def digits_bundle_dirs(digits_spec, digits_model, digits_preset, digits_bundle_dir, tmp_path_factory):
    """``bundle_dir(class_index)``: small real runs of other digits, written once per session."""
    from neurflow_graph.bundle.files import write_bundle
    from neurflow_graph.engine.pipeline import NeurFlow
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.models.images import filter_predicted, image_set_from_tensors

    made = {3: digits_bundle_dir}

    def bundle_dir(class_index: int):
        if class_index not in made:
            images, _ = digits_images(class_index, split="test")
            kept, _ = filter_predicted(digits_model, image_set_from_tensors(images), class_index,
                                       digits_preset.normalize)
            kept = kept.subset(range(12))
            bundle = NeurFlow(progress=False, **SMALL).run(digits_spec, class_index, kept.images, kept.sha256)
            made[class_index] = write_bundle(bundle, tmp_path_factory.mktemp("bundles") / f"digits-{class_index}")
        return made[class_index]

    return bundle_dir


_HEAVY = ("torch", "torchvision", "sklearn")
_DRIVER = """
import atexit, json, sys
atexit.register(lambda: print("LOADED " + json.dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr))
from neurflow_graph.cli.main import main
main({args!r})
"""


@pytest.fixture(scope="session")
def command_imports():
    """``command_imports(*args, env=None)``: run `neurflow-graph ARGS` in a fresh interpreter; its result and the
    heavy modules (torch, torchvision, scikit-learn) it imported, read at exit."""
    import json
    import subprocess
    import sys

    def run(*args: str, env: dict[str, str] | None = None):
        code = _DRIVER.format(heavy=_HEAVY, args=list(args))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
        return done, json.loads(line.removeprefix("LOADED "))

    return run
