"""The top of a model, from one layer's output to the logits, with chosen layers kept as module calls.

Fidelity masks layers from the logit down to some layer L; everything below L is the same for every
mask, so it is computed once and only the part above L runs per mask. The layers in between must
stay module calls (not traced through) so that the masking hooks on them fire.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx, nn


class _Tracer(fx.Tracer):
    def __init__(self, leaves: set[str]):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or super().is_leaf_module(m, module_qualified_name)


def _batch_size(node: fx.Node) -> bool:
    """``input.size(0)`` (or ``.shape[0]``-like ``size`` calls on the input): the batch size, shared by every layer."""
    return (node.op == "call_method" and node.target == "size" and node.args[0].op == "placeholder"
            and (node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")) == 0)


def model_top(model: nn.Module, start: str, layers: Sequence[str], example: torch.Tensor) -> nn.Module | None:
    """A module mapping ``start``'s output to the model's output, calling each of ``layers`` once as a module.

    Returns None when the model cannot be traced or sliced there, or the slice does not reproduce the
    model on ``example`` (a small input batch); callers then run the whole model.
    """
    try:
        graph = _Tracer({start, *layers}).trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: run the whole model
        return None
    calls = [n for n in graph.nodes if n.op == "call_module"]
    low = [n for n in calls if n.target == start]
    if len(low) != 1 or any(sum(n.target == name for n in calls) != 1 for name in layers):
        return None
    output = next(n for n in graph.nodes if n.op == "output")
    needed: set[fx.Node] = set()
    stack = list(output.all_input_nodes)
    while stack:
        node = stack.pop()
        if node in needed or node is low[0]:
            continue
        needed.add(node)
        if _batch_size(node):
            continue
        if node.op == "placeholder":
            return None  # the output reads the input by another path than ``start``
        stack.extend(node.all_input_nodes)
    sub = fx.Graph()
    env: dict[fx.Node, fx.Node] = {low[0]: sub.placeholder("x")}
    for node in graph.nodes:
        if node in needed:
            env[node] = (sub.call_method("size", (env[low[0]], 0)) if _batch_size(node)
                         else sub.node_copy(node, lambda n: env[n]))
    sub.output(env[output.args[0]] if isinstance(output.args[0], fx.Node) else output.args[0])
    top = fx.GraphModule(model, sub)
    return top if _reproduces(model, top, start, layers, example) else None


@torch.no_grad()
def _reproduces(model: nn.Module, top: nn.Module, start: str, layers: Sequence[str], example: torch.Tensor) -> bool:
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    fired: list[str] = []
    handles = [modules[start].register_forward_hook(lambda _m, _i, o: seen.setdefault("start", o))]
    try:
        expected = model(example)
        for name in layers:
            handles.append(modules[name].register_forward_hook(lambda *_a, _n=name: fired.append(_n)))
        got = top(seen["start"])
    except Exception:  # noqa: BLE001 - a slice that fails to run is not used
        return False
    finally:
        for handle in handles:
            handle.remove()
    return sorted(fired) == sorted(layers) and torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
