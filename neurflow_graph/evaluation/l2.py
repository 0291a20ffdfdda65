"""The L2-weight baseline of Cammarata et al. (2020): rank lower neurons by the norm of their weights into a target.

When the bridge between two layers holds one channel-mixing layer (a conv or linear layer, with only
per-channel operations around it), the weight of lower neuron s into target a is that layer's kernel
slice ``W[a, s]`` and its L2 norm is used as is. Otherwise (e.g. EfficientNet's MBConv blocks:
expand conv, depthwise conv, project conv, residual) the *expanded weights* of the Circuits thread
are used: the bridge is linearised (activation functions replaced by the identity, batch norm kept
as its inference-time affine map) and ``W[a, s]`` is the response of channel a to a unit impulse at
the centre of channel s, minus the response to zero; its L2 norm over space ranks s. A bridge that
stays non-linear after that (e.g. max-pooling, functional activations) has no L2 baseline.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import fx, nn

from .contributions import leaf_calls
from .knockout import Knockout

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
               nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.Dropout)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def weight_norms(knock: Knockout) -> tuple[np.ndarray | None, str]:
    """U×C weight norms from each lower neuron into each upper neuron, and how they were computed.

    The method is ``"kernel"`` (one conv/linear layer), ``"expanded"`` (linearised bridge) or
    ``"unavailable"`` (None returned).
    """
    direct = _single_layer(knock)
    if direct is not None:
        weight = direct.weight.detach().float()
        return weight.reshape(weight.shape[0], weight.shape[1], -1).norm(dim=2).cpu().numpy(), "kernel"
    norms = _expanded(knock)
    return (norms, "expanded") if norms is not None else (None, "unavailable")


def _single_layer(knock: Knockout) -> nn.Module | None:
    if not isinstance(knock.bridge, fx.GraphModule):
        return None
    calls = leaf_calls(knock.bridge, knock.example)
    mixing = [c.module for c in calls if isinstance(c.module, (nn.Conv2d, nn.Linear))]
    params = [c.module for c in calls if any(True for _ in c.module.parameters(recurse=False))]
    if len(mixing) != 1 or any(m is not mixing[0] and not isinstance(m, _NORMS) for m in params):
        return None
    layer = mixing[0]
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return None
    return layer if layer.weight.shape[1] == knock.width else None


@torch.no_grad()
def _expanded(knock: Knockout) -> np.ndarray | None:
    if knock.skip is not None:  # a skip path's values differ per patch: no single linearised bridge
        return None
    linear = copy.deepcopy(knock.bridge).eval().double()  # float64: the affine offsets dwarf the responses
    for name, module in list(linear.named_modules()):
        if isinstance(module, ACTIVATIONS) and name:
            parent, _, attr = name.rpartition(".")
            setattr(linear.get_submodule(parent) if parent else linear, attr, nn.Identity())
    shape = knock.example.shape[1:]
    impulses = torch.zeros((knock.width, *shape), dtype=torch.float64, device=knock.device)
    centre = tuple(s // 2 for s in shape[1:])
    impulses[(torch.arange(knock.width), torch.arange(knock.width), *centre)] = 1.0
    zero = linear(torch.zeros_like(impulses[:1]))
    response = linear(impulses) - zero
    mirrored = linear(-impulses) - zero
    probe = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0)).to(impulses)
    summed = linear(probe[:1] + probe[1:]) - zero
    parts = linear(probe) - zero
    scale = 1e-6 * (1 + float(response.abs().max()) + float(zero.abs().max()))
    if not (torch.allclose(mirrored, -response, atol=scale, rtol=1e-6)
            and torch.allclose(summed, parts[:1] + parts[1:], atol=scale, rtol=1e-6)):
        return None
    return response.flatten(2).norm(dim=2).T.float().cpu().numpy() if response.ndim > 2 \
        else response.abs().T.float().cpu().numpy()
