"""A small CNN on scikit-learn's 8x8 digits, trained once on first use and cached on disk.

It gives the pipeline a real, fully offline classifier: 1797 images (no download), upsampled to
1x32x32 in [0, 1]; conv1 (16 ch, 32x32) -> conv2 (32 ch, 16x16) -> conv3 (64 ch, 8x8) -> global mean
-> ``fc`` (10 logits). Each ``convN`` module returns post-ReLU feature maps, so a channel's spatial
mean is a non-negative neuron activation.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurflow_graph.errors import ConfigError

CACHE_ENV = "NEURFLOW_GRAPH_CACHE_DIR"
INPUT_SIZE = 32
# Pixel mean and standard deviation of the upsampled training images; inputs are (x - MEAN) / STD.
DIGITS_MEAN = (0.3053,)
DIGITS_STD = (0.3235,)
CLASS_NAMES = tuple(str(d) for d in range(10))
SPLITS = ("train", "test", "all")

_MODEL_FILE = "digits_cnn_v1.pt"
_INFO_FILE = "digits_cnn_v1.json"
_SEED = 0
_EPOCHS = 20
_BATCH_SIZE = 64
_LR = 1e-2


class ConvBlock(nn.Module):
    """3x3 convolution followed by ReLU, so the module output is the activated feature map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class DigitsCNN(nn.Module):
    """conv1 -> pool1 -> conv2 -> pool2 -> conv3 -> spatial mean -> fc; input N x 1 x 32 x 32, normalised."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = ConvBlock(1, 16)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = ConvBlock(16, 32)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = ConvBlock(32, 64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.conv3(x)
        return self.fc(x.mean(dim=(2, 3)))


def normalize_digits(images: torch.Tensor) -> torch.Tensor:
    """Map images in [0, 1] (N x 1 x H x W) to the model's input scale."""
    mean = torch.tensor(DIGITS_MEAN, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(DIGITS_STD, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def _all_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    small = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(small, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0), torch.from_numpy(data.target.astype(np.int64))


def _split_mask(n: int, split: str) -> torch.Tensor:
    # Every fourth image (index % 4 == 3) is a test image: fixed, and independent of library versions.
    is_test = torch.arange(n) % 4 == 3
    if split == "test":
        return is_test
    if split == "train":
        return ~is_test
    return torch.ones(n, dtype=torch.bool)


def digits_images(class_index: int | None = None, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Digits images (N x 1 x 32 x 32, float32 in [0, 1]) and labels (N, int64) of one split.

    ``split`` is "train" (1348 images), "test" (449) or "all"; ``class_index`` keeps one digit.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if class_index is not None and (
        isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index <= 9
    ):
        raise ConfigError(f"class_index must be an integer digit 0..9 or None, got {class_index!r}")
    images, labels = _all_digits()
    mask = _split_mask(len(labels), split)
    if class_index is not None:
        mask &= labels == class_index
    return images[mask].contiguous(), labels[mask].contiguous()


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: the argument, else $NEURFLOW_GRAPH_CACHE_DIR, else ~/.cache/neurflow-graph."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "neurflow-graph"


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    # One thread: the same weights on any machine, and no slowdown from oversubscribed cores.
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on images in [0, 1] (normalised here)."""
    model.eval()
    with torch.no_grad():
        predicted = model(normalize_digits(images)).argmax(dim=1)
    return float((predicted == labels).float().mean())


def train_digits_model(seed: int = _SEED, epochs: int = _EPOCHS) -> tuple[DigitsCNN, dict[str, Any]]:
    """Train a DigitsCNN from scratch on the fixed train split; returns the model and its metrics."""
    return train_classifier(DigitsCNN, lambda params: torch.optim.Adam(params, lr=_LR), _LR, seed, epochs)


def train_classifier(build: Any, optimizer: Any, max_lr: float, seed: int, epochs: int,
                     ) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``build()`` on the fixed train split (one thread, one-cycle schedule, 2-px shifts); model and metrics.

    ``optimizer(parameters)`` makes the optimizer; everything random comes from ``seed``.
    """
    start = time.perf_counter()
    train_x, train_y = digits_images(split="train")
    test_x, test_y = digits_images(split="test")
    generator = torch.Generator().manual_seed(seed)
    with _deterministic(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
        optim = optimizer(model.parameters())
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optim, max_lr=max_lr, total_steps=epochs * -(-len(train_y) // _BATCH_SIZE)
        )
        inputs = normalize_digits(train_x)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(train_y), generator=generator)
            for batch in order.split(_BATCH_SIZE):
                # Random shifts of up to 2 px make the small training set go further.
                dy, dx = torch.randint(-2, 3, (2,), generator=generator).tolist()
                x = torch.roll(inputs[batch], shifts=(dy, dx), dims=(2, 3))
                loss = F.cross_entropy(model(x), train_y[batch])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                schedule.step()
    model.eval()
    info = {
        "test_accuracy": round(accuracy(model, test_x, test_y), 4),
        "train_accuracy": round(accuracy(model, train_x, train_y), 4),
        "n_train": len(train_y),
        "n_test": len(test_y),
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(time.perf_counter() - start, 2),
        "torch_version": torch.__version__,
    }
    return model, info


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp creates the file private to its owner
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def digits_cache_paths(cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Paths of the cached state dict (.pt) and its metrics (.json)."""
    folder = resolve_cache_dir(cache_dir)
    return folder / _MODEL_FILE, folder / _INFO_FILE


def load_cached(model_file: str, info_file: str, build: Any, train: Any,
                cache_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """``build()`` with the weights cached as ``model_file``, trained by ``train()`` and cached on first use."""
    folder = resolve_cache_dir(cache_dir)
    model_path, info_path = folder / model_file, folder / info_file
    if model_path.is_file():
        model = build()
        try:
            from neurflow_graph.models.checkpoints import load_state, read_state_dict

            load_state(model, read_state_dict(model_path, what="cached model"), f"cached model {model_path}")
            return model.eval()
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            warnings.warn(
                f"retraining the model: cached {model_path} is unreadable ({exc})", stacklevel=2
            )
    try:
        model_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create cache folder {model_path.parent} ({exc.strerror}); "
            f"set {CACHE_ENV} to a writable folder"
        ) from exc
    model, info = train()
    payload = (json.dumps(info, indent=2) + "\n").encode()
    _atomic_write(info_path, lambda handle: handle.write(payload))
    _atomic_write(model_path, lambda handle: torch.save(model.state_dict(), handle))
    return model


def cached_info(model_file: str, info_file: str, build: Any, train: Any,
                cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Metrics recorded when the cached model was trained; trains and caches it first when missing."""
    folder = resolve_cache_dir(cache_dir)
    if not (folder / model_file).is_file() or not (folder / info_file).is_file():
        load_cached(model_file, info_file, build, train, cache_dir)
    with open(folder / info_file, encoding="utf-8") as handle:
        return json.load(handle)


def load_digits_model(cache_dir: str | os.PathLike[str] | None = None) -> DigitsCNN:
    """The trained digits CNN in eval mode, trained and cached on first use (about 10 s, one core)."""
    return load_cached(_MODEL_FILE, _INFO_FILE, DigitsCNN, train_digits_model, cache_dir)


def digits_model_info(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Metrics recorded when the cached model was trained (test_accuracy, train_seconds, ...)."""
    return cached_info(_MODEL_FILE, _INFO_FILE, DigitsCNN, train_digits_model, cache_dir)
