"""A small vision transformer on scikit-learn's digits (torchvision's VisionTransformer), trained once and cached.

The transformer counterpart of ``digits.py``: the same 1x32x32 inputs, cut into 4x4 = 16 patches of 8x8 px
plus a class token, 3 encoder blocks of width 64 (4 heads, MLP 256 = 4x64), the class token's final
state -> ``heads.head`` (10 logits). Residual-stream sites are ``encoder.layers.encoder_layer_N`` (B×17×64
tokens); MLP-hidden sites are ``encoder.layers.encoder_layer_N.mlp.1``, the GELU output (B×17×256).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neurflow_graph.digits import _deterministic, accuracy, digits_images, load_cached, normalize_digits

PATCH_SIZE, NUM_LAYERS, NUM_HEADS, HIDDEN_DIM, MLP_DIM = 8, 3, 4, 64, 256
_MODEL_FILE, _INFO_FILE = "digits_vit_v1.pt", "digits_vit_v1.json"
_SEED, _EPOCHS, _BATCH_SIZE, _LR = 0, 25, 64, 3e-3


def digits_vit() -> nn.Module:
    """An untrained digits ViT: torchvision's VisionTransformer with a one-channel patch embedding."""
    from neurflow_graph._compat import import_torchvision

    torchvision = import_torchvision()
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=PATCH_SIZE, num_layers=NUM_LAYERS, num_heads=NUM_HEADS, hidden_dim=HIDDEN_DIM,
        mlp_dim=MLP_DIM, num_classes=10, dropout=0.0, attention_dropout=0.0,
    )
    model.conv_proj = nn.Conv2d(1, HIDDEN_DIM, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)
    return model


def train_digits_vit(seed: int = _SEED, epochs: int = _EPOCHS) -> tuple[nn.Module, dict[str, Any]]:
    """Train the digits ViT from scratch on the fixed train split (AdamW, one-cycle, 2-px shifts)."""
    start = time.perf_counter()
    train_x, train_y = digits_images(split="train")
    test_x, test_y = digits_images(split="test")
    generator = torch.Generator().manual_seed(seed)
    with _deterministic(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = digits_vit()
        optimizer = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.05)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=_LR, total_steps=epochs * -(-len(train_y) // _BATCH_SIZE)
        )
        inputs = normalize_digits(train_x)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(train_y), generator=generator)
            for batch in order.split(_BATCH_SIZE):
                dy, dx = torch.randint(-2, 3, (2,), generator=generator).tolist()
                x = torch.roll(inputs[batch], shifts=(dy, dx), dims=(2, 3))
                loss = F.cross_entropy(model(x), train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()
    info = {
        "test_accuracy": round(accuracy(model, test_x, test_y), 4),
        "train_accuracy": round(accuracy(model, train_x, train_y), 4),
        "n_train": len(train_y), "n_test": len(test_y), "epochs": epochs, "seed": seed,
        "train_seconds": round(time.perf_counter() - start, 2), "torch_version": torch.__version__,
    }
    return model, info


def load_digits_vit(cache_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """The trained digits ViT in eval mode, trained and cached on first use (under a minute on 2 cores)."""
    return load_cached(_MODEL_FILE, _INFO_FILE, digits_vit, train_digits_vit, cache_dir)


def digits_vit_info(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Metrics recorded when the cached digits ViT was trained (test_accuracy, train_seconds, ...)."""
    from neurflow_graph.digits import cached_info

    return cached_info(_MODEL_FILE, _INFO_FILE, digits_vit, train_digits_vit, cache_dir)
