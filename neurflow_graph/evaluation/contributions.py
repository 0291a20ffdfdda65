"""Knockouts as sums of per-channel contributions, for bridges whose only channel-mixing layer comes first.

If the bridge is: per-channel operations (pooling, activations), then one plain conv or linear
layer, then per-channel operations on its output (as between the digits model's layers), target
a's pre-activation is ``b_a + Σ_s W[a, s] * u_s``: zeroing neurons S removes their terms, and many
knockouts of one target are one matrix product of keep-masks with the per-channel contributions.
The shortcut is used only after it reproduces the bridge on random masks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from neurflow_graph.engine.layers import neuron_activations

# Modules that act on each channel separately (and keep zero channels zero where they come first).
_CHANNELWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
    nn.Hardtanh, nn.Mish, nn.Softplus, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
)
# Functions that mix channels inside a traced bridge (the shortcut only models module calls).
_FUNCTIONAL_MIXING = (F.conv1d, F.conv2d, F.conv3d, F.linear, F.bilinear, torch.conv2d, torch.matmul, torch.mm,
                      torch.bmm, torch.einsum, torch.tensordot)
@dataclass
class _Call:
    module: nn.Module
    inputs: tuple
    output: object


def leaf_calls(module: nn.Module, x: torch.Tensor) -> list[_Call]:
    """The leaf modules (and conv/linear layers) ``module(x)`` calls, in the order they return."""
    calls: list[_Call] = []
    with contextlib.ExitStack() as hooks:  # a torch hook handle removes its hook when its block exits
        for sub in module.modules():
            leaf = next(sub.children(), None) is None or isinstance(sub, (nn.Conv2d, nn.Linear))
            if leaf and sub is not module:
                hooks.enter_context(sub.register_forward_hook(lambda m, i, o: calls.append(_Call(m, i, o))))
        with torch.no_grad():
            module(x)
    return calls


class _Stop(Exception):
    pass


@dataclass
class LinearFirst:
    """A bridge of the form: per-channel ops, then one conv/linear layer, then per-channel ops on its output."""

    layer: nn.Module
    inputs: torch.Tensor  # the mixing layer's input for every patch (P×C×H×W or P×C)
    post: list[nn.Module]

    @classmethod
    def build(cls, bridge_module: nn.Module, maps: torch.Tensor) -> LinearFirst | None:
        """The shortcut for this bridge, or None when it does not reproduce the bridge exactly."""
        if not isinstance(bridge_module, fx.GraphModule) or any(
                node.op == "call_function" and node.target in _FUNCTIONAL_MIXING for node in bridge_module.graph.nodes):
            return None
        calls = leaf_calls(bridge_module, maps[:2])
        first = next((i for i, c in enumerate(calls) if isinstance(c.module, (nn.Conv2d, nn.Linear))), None)
        if first is None or not all(isinstance(c.module, _CHANNELWISE) for c in calls[:first]):
            return None
        layer = calls[first].module
        plain_conv = type(layer) is nn.Conv2d and layer.groups == 1 and layer.padding_mode == "zeros"
        if not (plain_conv or type(layer) is nn.Linear) or layer.weight.shape[1] != maps.shape[1]:
            return None
        post = [c.module for c in calls[first + 1 :]]
        if not all(isinstance(m, _CHANNELWISE) for m in post):
            return None
        try:
            fast = cls(layer, _layer_inputs(bridge_module, layer, maps), post)
            return fast if fast._reproduces(bridge_module, maps) else None
        except RuntimeError:  # shapes that do not fit the shortcut
            return None

    def activations(self, target: int, keep: np.ndarray) -> np.ndarray:
        """Activations of one target (M×P) with the neurons where ``keep`` (M×C) is False zeroed."""
        u, layer = self.inputs, self.layer
        weight = layer.weight[target]
        bias = layer.bias[target] if layer.bias is not None else torch.zeros((), device=u.device)
        if isinstance(layer, nn.Linear):
            contrib = (u * weight).T.contiguous()  # C×P
        else:
            contrib = F.conv2d(u, weight.unsqueeze(1), None, layer.stride, layer.padding, layer.dilation,
                               groups=u.shape[1]).transpose(0, 1).contiguous()  # C×P×H×W
        n_patches, spatial = contrib.shape[1], contrib.shape[2:]
        masks = torch.as_tensor(keep, dtype=contrib.dtype, device=contrib.device)
        out = torch.empty((len(masks), n_patches), dtype=torch.float32)
        # Small chunks (patches × masks) keep each product in cache: several times faster than large ones.
        per_patch = int(np.prod(spatial)) if spatial else 1
        patch_chunk = max(1, 2**14 // per_patch)
        mask_chunk = max(1, 2**22 // (patch_chunk * per_patch))
        for p0 in range(0, n_patches, patch_chunk):
            part = contrib[:, p0 : p0 + patch_chunk].reshape(contrib.shape[0], -1)
            n = min(patch_chunk, n_patches - p0)
            for m0 in range(0, len(masks), mask_chunk):
                m = masks[m0 : m0 + mask_chunk]
                z = (m @ part + bias).reshape(len(m) * n, 1, *spatial)
                for module in self.post:
                    z = _channel_op(module, z, target)
                out[m0 : m0 + len(m), p0 : p0 + n] = neuron_activations(z).reshape(len(m), n).float().cpu()
        return out.numpy()

    def _reproduces(self, bridge_module: nn.Module, maps: torch.Tensor) -> bool:
        rng = np.random.default_rng(0)
        ids = np.sort(rng.choice(len(maps), min(len(maps), 32), replace=False))
        keep = rng.random((4, maps.shape[1])) < 0.5
        keep[0] = True
        sub = LinearFirst(self.layer, self.inputs[torch.as_tensor(ids)], self.post)
        spatial = [1] * (maps.ndim - 2)
        with torch.no_grad():
            for mask in keep:
                m = torch.as_tensor(mask, dtype=maps.dtype, device=maps.device).view(1, -1, *spatial)
                expected = neuron_activations(bridge_module(maps[torch.as_tensor(ids)] * m))
                targets = np.linspace(0, expected.shape[1] - 1, min(6, expected.shape[1])).astype(int)
                for t in targets:
                    got = torch.as_tensor(sub.activations(int(t), mask[None]))[0]
                    ref = expected[:, t].float().cpu()
                    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * (1 + float(ref.abs().max()))):
                        return False
        return True


def _layer_inputs(bridge_module: nn.Module, layer: nn.Module, maps: torch.Tensor) -> torch.Tensor:
    """What ``layer`` receives inside the bridge for every row of ``maps``."""
    parts: list[torch.Tensor] = []

    def grab(_m, inputs):
        parts.append(inputs[0].detach())
        raise _Stop

    with layer.register_forward_pre_hook(grab), torch.no_grad():
        for start in range(0, len(maps), 256):
            with contextlib.suppress(_Stop):
                bridge_module(maps[start : start + 256])
    return torch.cat(parts)


def _channel_op(module: nn.Module, z: torch.Tensor, channel: int) -> torch.Tensor:
    """Apply a per-channel module to the single channel ``channel`` held in ``z`` (B×1×…)."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        scale = module.weight[channel] if module.weight is not None else 1.0
        shift = module.bias[channel] if module.bias is not None else 0.0
        inv = torch.rsqrt(module.running_var[channel] + module.eps)
        return (z - module.running_mean[channel]) * inv * scale + shift
    return module(z)
