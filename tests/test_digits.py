"""The digits CNN trains deterministically, reaches its accuracy, and is cached atomically."""

from __future__ import annotations

import json

import pytest
import torch

from neurflow_graph.errors import ConfigError
from neurflow_graph.models.digits import (
    CACHE_ENV,
    DigitsCNN,
    accuracy,
    digits_cache_paths,
    digits_images,
    digits_model_info,
    load_digits_model,
    resolve_cache_dir,
    train_digits_model,
)


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh cache folder: the first load here trains the model."""
    return tmp_path_factory.mktemp("digits-cache")


def test_trains_caches_and_reuses_the_cache(digits_cache) -> None:
    model = load_digits_model(digits_cache)
    model_path, info_path = digits_cache_paths(digits_cache)
    assert model_path.is_file() and info_path.is_file()
    assert not [p for p in digits_cache.iterdir() if p.suffix == ".tmp"]  # atomic writes leave no temp file
    info = json.loads(info_path.read_text())
    assert info["test_accuracy"] >= 0.95
    test_x, test_y = digits_images(split="test")
    assert accuracy(model, test_x, test_y) == pytest.approx(info["test_accuracy"], abs=1e-3)

    mtime = model_path.stat().st_mtime_ns
    again = load_digits_model(digits_cache)
    assert model_path.stat().st_mtime_ns == mtime  # loaded, not retrained
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not again.training
    assert digits_model_info(digits_cache) == info


def test_cache_dir_comes_from_the_environment(digits_cache, monkeypatch: pytest.MonkeyPatch) -> None:
    load_digits_model(digits_cache)
    monkeypatch.setenv(CACHE_ENV, str(digits_cache))
    assert resolve_cache_dir() == digits_cache
    assert resolve_cache_dir(digits_cache / "other") == digits_cache / "other"
    mtime = digits_cache_paths()[0].stat().st_mtime_ns
    load_digits_model()
    assert digits_cache_paths()[0].stat().st_mtime_ns == mtime


def test_training_is_deterministic() -> None:
    threads = torch.get_num_threads()
    first, info_a = train_digits_model(epochs=1)
    second, info_b = train_digits_model(epochs=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert info_a["test_accuracy"] == info_b["test_accuracy"]
    assert not torch.are_deterministic_algorithms_enabled()  # global settings are restored
    assert torch.get_num_threads() == threads


def test_digits_images_splits_and_classes() -> None:
    train_x, train_y = digits_images(split="train")
    test_x, test_y = digits_images(split="test")
    assert train_x.shape == (1348, 1, 32, 32) and test_x.shape == (449, 1, 32, 32)
    assert train_x.dtype == torch.float32 and 0.0 <= float(test_x.min()) and float(test_x.max()) <= 1.0
    assert len(digits_images(split="all")[1]) == 1797
    sevens, labels = digits_images(class_index=7)
    assert len(sevens) > 30 and bool((labels == 7).all())
    with pytest.raises(ConfigError, match="split must be one of train, test, all"):
        digits_images(split="validation")
    with pytest.raises(ConfigError, match="class_index"):
        digits_images(class_index=10)


def test_conv3_maps_are_still_spatial() -> None:
    model = DigitsCNN().eval()
    seen: dict[str, torch.Size] = {}

    def record(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        seen["conv3"] = output.shape

    handle = model.conv3.register_forward_hook(record)
    try:
        logits = model(torch.rand(2, 1, 32, 32))
    finally:
        handle.remove()
    assert logits.shape == (2, 10)
    assert seen["conv3"] == (2, 64, 8, 8)
