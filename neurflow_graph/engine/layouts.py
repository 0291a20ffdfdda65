"""Layer layouts: what a neuron is in units, channels-first, channels-last and token outputs, in one place.

A layer's output is units (B×C), channels-first maps (B×C×H×W), channels-last maps (B×H×W×C) or tokens
(B×T×D). A neuron is a unit, a channel or a token dimension; its activation is the mean over positions,
or over the patch tokens (``tokens="patches"``: class and register tokens left out), all tokens
(``"all"``) or the class token alone (``"cls"``). Every stage reaches a layer's neurons through its
``Layout``: activations, the channel axis a mask multiplies, and the channels-first view
(B×C×positions) on which integrated gradients and knockouts work for every layout alike.

A layout is inferred only where it is unambiguous (2-D outputs, modules whose type fixes it, and a
4-D output whose width axis a wider probe input reveals); otherwise it is stated by the preset, the
``ModelSpec`` or a recipe's ``[model] layouts``. ``resolve_layouts`` records each layer's layout on its
module, where ``layout_of`` and the masking hooks read it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from neurflow_graph.errors import ConfigError, LayerError

KINDS = ("units", "channels_first", "channels_last", "tokens")
TOKEN_MODES = ("patches", "all", "cls")
_NDIM = {"units": 2, "channels_first": 4, "channels_last": 4, "tokens": 3}
_ATTRIBUTE = "_neurflow_layout"


@dataclass(frozen=True)
class Layout:
    """How one layer's output holds its neurons.

    ``prefix`` is the number of leading non-patch tokens (class and register tokens) of a token layout.
    """

    kind: str
    tokens: str = "patches"
    prefix: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"layout must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.tokens not in TOKEN_MODES:
            raise ConfigError(f"tokens must be one of {', '.join(TOKEN_MODES)}, got {self.tokens!r}")
        if isinstance(self.prefix, bool) or not isinstance(self.prefix, int) or self.prefix < 0:
            raise ConfigError(f"prefix tokens must be a non-negative integer, got {self.prefix!r}")
        if self.kind == "tokens" and self.tokens == "cls" and self.prefix < 1:
            raise ConfigError("tokens='cls' needs a class token (prefix >= 1)")

    @property
    def ndim(self) -> int:
        """Number of axes of an output of this layout, batch included."""
        return _NDIM[self.kind]

    @property
    def channel_axis(self) -> int:
        """The axis holding the neurons: 1, or -1 for channels-last and token outputs."""
        return -1 if self.kind in ("channels_last", "tokens") else 1

    def check(self, name: str, output: torch.Tensor) -> None:
        """Refuse an output whose number of axes does not fit the layout (one line naming the layer)."""
        if output.ndim != self.ndim:
            raise LayerError(
                f"layer {name!r} is declared {self.kind} but outputs shape {tuple(output.shape)}; "
                f"a {self.kind} output has {self.ndim} axes; state its layout as one of {', '.join(KINDS)}"
            )
        if self.kind == "tokens" and self.tokens == "patches" and output.shape[1] <= self.prefix:
            raise LayerError(f"layer {name!r} has {output.shape[1]} tokens, none after its {self.prefix} prefix tokens")

    def width(self, output: torch.Tensor) -> int:
        """Number of neurons of this output."""
        return int(output.shape[self.channel_axis])

    def activations(self, output: torch.Tensor) -> torch.Tensor:
        """One value per neuron (B×C): units as is, the mean over positions or over the chosen tokens."""
        if self.kind == "units":
            return output
        if self.kind == "channels_first":
            return output.flatten(2).mean(-1)
        if self.kind == "channels_last":
            return output.flatten(1, -2).mean(1)
        if self.tokens == "cls":
            return output[:, 0]
        return output[:, self.prefix :].mean(1) if self.tokens == "patches" else output.mean(1)

    def to_channels_first(self, output: torch.Tensor) -> torch.Tensor:
        """The output as B×C(×positions): channels-last maps as B×C×H×W, tokens as B×D×T."""
        if self.kind == "channels_last":
            return output.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            return output.transpose(1, 2)
        return output

    def from_channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``to_channels_first``."""
        if self.kind == "channels_last":
            return x.permute(0, 2, 3, 1)
        if self.kind == "tokens":
            return x.transpose(1, 2)
        return x

    def keep(self, output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``output`` with each neuron scaled by ``mask`` (C or B×C) at every position or token."""
        mask = mask.to(device=output.device, dtype=output.dtype)
        if mask.ndim == 1:
            mask = mask.unsqueeze(0)
        if self.channel_axis == 1:
            return output * mask.view(*mask.shape, *([1] * (output.ndim - 2)))
        return output * mask.view(mask.shape[0], *([1] * (output.ndim - 2)), mask.shape[1])


UNITS, CHANNELS_FIRST = Layout("units"), Layout("channels_first")


def parse_layout(value: str | Layout, tokens: str = "patches", prefix: int = 1) -> Layout:
    """A layout from its name (``units``, ``channels_first``, ``channels_last``, ``tokens``) or as given."""
    if isinstance(value, Layout):
        return value
    if value not in KINDS:
        raise ConfigError(f"layout must be one of {', '.join(KINDS)}, got {value!r}")
    return Layout(value, tokens=tokens, prefix=prefix)


@functools.cache
def _typed_layouts() -> list[tuple[tuple[type, ...], str]]:
    """Module types whose output layout their type fixes."""
    from torch.nn.modules import batchnorm, conv, instancenorm

    channels_first: tuple[type, ...] = (
        conv._ConvNd, batchnorm._BatchNorm, instancenorm._InstanceNorm, nn.GroupNorm, nn.MaxPool2d, nn.AvgPool2d,
        nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d,
    )
    channels_last: tuple[type, ...] = ()
    tokens: tuple[type, ...] = ()
    with contextlib.suppress(ImportError):
        from neurflow_graph._compat import import_torchvision

        models = import_torchvision().models
        convnext, resnet, swin_transformer = models.convnext, models.resnet, models.swin_transformer
        vision_transformer = models.vision_transformer
        channels_first += (resnet.BasicBlock, resnet.Bottleneck, convnext.CNBlock)
        channels_last += (swin_transformer.SwinTransformerBlock, swin_transformer.SwinTransformerBlockV2,
                          swin_transformer.PatchMerging, swin_transformer.PatchMergingV2)
        tokens += (vision_transformer.EncoderBlock,)
    with contextlib.suppress(ImportError):
        import timm.models.vision_transformer as timm_vit  # optional

        tokens += (timm_vit.Block,)
    return [(channels_first, "channels_first"), (channels_last, "channels_last"), (tokens, "tokens")]


def infer_layout(module: nn.Module, output: torch.Tensor) -> str | None:
    """The layout that the output's rank or the module's type fixes, or None when it is ambiguous."""
    if output.ndim == 2:
        return "units"
    for types, kind in _typed_layouts():
        if types and isinstance(module, types) and output.ndim == _NDIM[kind]:
            return kind
    return None


def _state(name: str, shape: tuple[int, ...], why: str) -> LayerError:
    return LayerError(
        f"cannot tell the layout of layer {name!r} (output shape {shape}): {why}; state it, e.g. "
        f"ModelSpec(layouts={{{name!r}: 'channels_last'}}) or in the recipe [model] layouts = "
        f"{{\"{name}\" = \"tokens\"}} (one of {', '.join(KINDS)})"
    )


def resolve_layouts(
    model: nn.Module, layers: Sequence[str], example: torch.Tensor, declared: Mapping[str, str | Layout] | None = None,
    tokens: str = "patches", prefix: int = 1,
) -> dict[str, Layout]:
    """Each layer's layout, stated (``declared``) or inferred, checked on ``example`` and recorded on its module.

    ``tokens`` and ``prefix`` apply to every token layer not declared as a ``Layout``.
    """
    from neurflow_graph.engine.hooks import _module, capture

    declared = dict(declared or {})
    unknown = sorted(set(declared) - set(layers))
    if unknown:
        raise ConfigError(f"layouts name layers that are not listed: {', '.join(unknown)}; list them or drop them")
    modules = {name: _module(model, name) for name in layers}
    with torch.no_grad(), capture(model, layers) as seen:
        model(example)
    result: dict[str, Layout] = {}
    probe_needed = []
    for name in layers:
        output = seen[name]
        if name in declared:
            layout = parse_layout(declared[name], tokens, prefix)
        else:
            kind = infer_layout(modules[name], output)
            if kind is None and output.ndim == 4:
                probe_needed.append(name)
                continue
            if kind is None:
                raise _state(name, tuple(output.shape), f"a {output.ndim}-D output of a {type(modules[name]).__name__}"
                             " module could be tokens or maps")
            layout = Layout(kind, tokens, prefix)
        layout.check(name, output)
        result[name] = layout
    if probe_needed:
        changed = _width_probe(model, probe_needed, example)
        for name in probe_needed:
            axes = changed.get(name)
            if axes not in ([3], [2]):
                raise _state(name, tuple(seen[name].shape), "no module type fixes it and a wider input does not "
                             "change one axis alone")
            result[name] = Layout("channels_first" if axes == [3] else "channels_last", tokens, prefix)
    for name in layers:
        setattr(modules[name], _ATTRIBUTE, result[name])
    return {name: result[name] for name in layers}


def _width_probe(model: nn.Module, layers: Sequence[str], example: torch.Tensor) -> dict[str, list[int]]:
    """The output axes of ``layers`` that change when the input is made twice as wide (missing: it failed)."""
    from neurflow_graph.engine.hooks import capture

    wide = torch.cat([example[:1], example[:1].flip(-1)], dim=-1)
    narrow: dict[str, tuple[int, ...]] = {}
    with torch.no_grad(), capture(model, layers) as seen, contextlib.suppress(Exception):
        model(example[:1])
        narrow = {name: tuple(out.shape) for name, out in seen.items()}
        seen.clear()
        model(wide)  # the head may refuse the wider input: the layers below it have run by then
    changed = {}
    for name, out in seen.items():
        if name in narrow and out.ndim == len(narrow[name]):
            changed[name] = [axis for axis in range(1, out.ndim) if out.shape[axis] != narrow[name][axis]]
    return changed


def record_layouts(model: nn.Module, layouts: Mapping[str, str | Layout]) -> None:
    """Record stated layouts on ``model``'s modules (a preset's, at build), where ``layout_of`` reads them.

    Lets code that never resolves layouts (``debug``'s masking of an MLP-unit layer) read a stated layout;
    ``resolve_layouts`` overwrites the record with the run's own (its ``tokens`` mode included).
    """
    modules = dict(model.named_modules())
    for name, value in layouts.items():
        if name in modules:
            setattr(modules[name], _ATTRIBUTE, parse_layout(value))


def module_layout(module: nn.Module, output: torch.Tensor, name: str = "?") -> Layout:
    """The layout recorded on ``module`` by ``resolve_layouts``; unrecorded: units for 2-D, channels first for 4-D.

    The unrecorded 4-D case keeps the behaviour of callers that never resolved layouts (CNN layers);
    any other unrecorded output is a LayerError asking for the layout to be stated.
    """
    layout = getattr(module, _ATTRIBUTE, None)
    if layout is not None:
        return layout
    kind = infer_layout(module, output)
    if kind is None and output.ndim == 4:
        kind = "channels_first"
    if kind is None:
        raise _state(name, tuple(output.shape), "its layout was never resolved")
    return Layout(kind)


def layout_of(model: nn.Module, name: str, output: torch.Tensor) -> Layout:
    """The layout of layer ``name`` of ``model`` for this output (see ``module_layout``)."""
    from neurflow_graph.engine.hooks import _module

    return module_layout(_module(model, name), output, name)


class ChannelsFirstBridge(nn.Module):
    """A sub-network seen through layouts: channels-first lower outputs in, upper neuron activations (B×C) out.

    Integrated gradients and knockouts work on this view, so a token or channels-last layer is handled
    exactly like a conv layer: masking channel c zeroes dimension c at every position or token.
    """

    def __init__(self, bridge: nn.Module, lower: Layout, upper: Layout):
        super().__init__()
        self.bridge, self.lower, self.upper = bridge, lower, upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upper.activations(self.bridge(self.lower.from_channels_first(x)))


def channels_first_bridge(bridge: nn.Module, lower: Layout, upper: Layout) -> nn.Module:
    """``bridge`` itself for unit and channels-first layers (unchanged behaviour), else ``ChannelsFirstBridge``."""
    if lower.kind in ("units", "channels_first") and upper.kind in ("units", "channels_first"):
        return bridge
    return ChannelsFirstBridge(bridge, lower, upper)


def held_inputs(sub: nn.Module, inputs: Callable, model_inputs: Callable) -> Callable:
    """``inputs`` (patch ids -> channels-first lower outputs) for the IG engine, binding each batch's skip path.

    For a sub-network that reads a skip path around its lower layer (``layers.SkipBridge``), each call
    also computes that path from ``model_inputs(ids)`` (normalised model inputs) and holds it for the
    engine's passes, with outputs relative to each input's own zero-lower baseline (completeness per input).
    Any other sub-network gets ``inputs`` unchanged.
    """
    from .hooks import skip_of

    skip = skip_of(sub)
    if skip is None:
        return inputs
    skip.relative = True
    native = sub.lower.from_channels_first if isinstance(sub, ChannelsFirstBridge) else (lambda t: t)

    def read(ids):
        x = inputs(ids)
        _low, sides = skip.sides(model_inputs(ids).to(x.device))
        skip.bind(native(x), sides)
        return x

    return read
