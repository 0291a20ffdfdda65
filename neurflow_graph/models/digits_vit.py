"""A small vision transformer on scikit-learn's digits (torchvision's VisionTransformer), trained once and cached.

The transformer counterpart of ``digits.py``: the same 1x32x32 inputs, cut into 4x4 = 16 patches of 8x8 px
plus a class token, 3 encoder blocks of width 64 (4 heads, MLP 256 = 4x64), the class token's final
state -> ``heads.head`` (10 logits). Residual-stream sites are ``encoder.layers.encoder_layer_N`` (B×17×64
tokens); MLP-hidden sites are ``encoder.layers.encoder_layer_N.mlp.1``, the GELU output (B×17×256).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from neurflow_graph.models.digits import load_cached, train_classifier

PATCH_SIZE, NUM_LAYERS, NUM_HEADS, HIDDEN_DIM, MLP_DIM = 8, 3, 4, 64, 256
_MODEL_FILE, _INFO_FILE = "digits_vit_v1.pt", "digits_vit_v1.json"
_SEED, _EPOCHS, _LR = 0, 25, 3e-3


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
    """Train the digits ViT from scratch on the fixed train split (AdamW, as the digits CNN otherwise)."""
    return train_classifier(digits_vit, lambda params: torch.optim.AdamW(params, lr=_LR, weight_decay=0.05), _LR,
                            seed, epochs)


def load_digits_vit(cache_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """The trained digits ViT in eval mode, trained and cached on first use (under a minute on 2 cores)."""
    return load_cached(_MODEL_FILE, _INFO_FILE, digits_vit, train_digits_vit, cache_dir)


def digits_vit_info(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Metrics recorded when the cached digits ViT was trained (test_accuracy, train_seconds, ...)."""
    from neurflow_graph.models.digits import cached_info

    return cached_info(_MODEL_FILE, _INFO_FILE, digits_vit, train_digits_vit, cache_dir)
