"""Named layers of any ``nn.Module``: validation, activation capture and the sub-network between two layers."""

from __future__ import annotations

import contextlib
import difflib
import warnings
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import fx, nn

from neurflow_graph.errors import LayerError


def neuron_activations(output: torch.Tensor) -> torch.Tensor:
    """Reduce a layer output to one value per neuron: linear units as is, conv channels by spatial mean.

    Shapes: (B, C) -> (B, C); (B, C, H, W) -> (B, C).
    """
    if output.ndim == 2:
        return output
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    raise LayerError(
        f"layer output of shape {tuple(output.shape)} is not supported; "
        "pick layers whose outputs are (batch, units) or (batch, channels, height, width)"
    )


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise LayerError(f"unknown layer {name!r}; {hint}valid layer names: {', '.join(names)}")
    return modules[name]


@contextlib.contextmanager
def capture(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes; hooks are removed on exit, even on error."""
    outputs: dict[str, torch.Tensor] = {}
    with contextlib.ExitStack() as hooks:  # a torch hook handle removes its hook when its block exits
        for name in layers:
            hooks.enter_context(_module(model, name).register_forward_hook(_recorder(outputs, name)))
        yield outputs


def _recorder(outputs: dict[str, torch.Tensor], name: str):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise LayerError(f"layer {name!r} returns {type(output).__name__}, not a tensor; pick another layer")
        outputs[name] = output

    return hook


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the wanted layer has run."""


def call_order(model: nn.Module, layers: Sequence[str], example: torch.Tensor) -> list[str]:
    """Names from ``layers`` in the order the forward pass calls them (one entry per call)."""
    order: list[str] = []
    with contextlib.ExitStack() as hooks:
        for name in layers:
            module = _module(model, name)
            hooks.enter_context(module.register_forward_hook(lambda *_args, _n=name: order.append(_n)))
        with torch.no_grad():
            model(example)
    return order


def validate_layers(model: nn.Module, layers: Sequence[str], example: torch.Tensor,
                    layouts: Mapping[str, str] | None = None, tokens: str = "patches") -> list[str]:
    """Check that ``layers`` are real modules, each called once, listed from the logit layer downwards,
    each of a known layout (stated in ``layouts`` where its output does not fix it)."""
    layers = list(layers)
    if len(layers) < 2:
        raise LayerError(f"need at least 2 layers (the logit layer and one below it), got {layers}")
    if len(set(layers)) != len(layers):
        raise LayerError(f"layer list repeats a name: {layers}")
    for name in layers:
        _module(model, name)
    order = call_order(model, layers, example)
    for name in layers:
        calls = order.count(name)
        if calls != 1:
            raise LayerError(f"layer {name!r} runs {calls} times in one forward pass; pick modules that run once")
    expected = list(reversed(order))
    if expected != layers:
        raise LayerError(
            f"layers are not in forward order from the logit layer down: got {layers}, the forward pass "
            f"calls them as {order}; list them as {expected}"
        )
    layer_widths(model, layers, example, layouts, tokens)
    return layers


def layer_widths(model: nn.Module, layers: Sequence[str], example: torch.Tensor,
                 layouts: Mapping[str, str] | None = None, tokens: str = "patches") -> dict[str, int]:
    """Neurons per layer, read through each layer's layout (``layouts.resolve_layouts``: stated or inferred).

    A layout is taken only where it is known, never guessed: a 2-D output, a module type that fixes it,
    a probe input twice as wide that changes exactly one spatial axis, or ``layouts`` (the user's or the
    preset's); any other output is a one-line LayerError naming the layer, its shape and how to state it.
    """
    from neurflow_graph.engine.layouts import resolve_layouts

    resolved = resolve_layouts(model, layers, example, layouts, tokens)
    with torch.no_grad(), capture(model, layers) as seen:
        model(example)
    return {name: resolved[name].width(seen[name]) for name in layers}


class _LeafTracer(fx.Tracer):
    def __init__(self, leaves: set[str]):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or super().is_leaf_module(m, module_qualified_name)


def _is_batch_size(node: fx.Node) -> bool:
    """``input.size(0)``: the batch size, which the lower layer's output shares with the model input."""
    if node.op != "call_method" or node.target != "size" or node.args[0].op != "placeholder":
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return dim == 0


def fx_slice(
    model: nn.Module, lower: str, upper: str | None = None, keep: Sequence[str] = ()
) -> tuple[nn.Module | None, str]:
    """The torch.fx subgraph computing ``upper``'s output (the model's output when None) from ``lower``'s.

    Modules named in ``keep`` (and ``upper``) stay module calls, each required to run exactly once, so
    hooks on them fire. Returns (None, why not) when the model cannot be traced or sliced there.
    """
    names = {lower, *keep} | ({upper} if upper else set())
    try:
        graph = _LeafTracer(names).trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: fall back
        return None, f"torch.fx cannot trace the model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target in names]
    if sorted(n.target for n in calls) != sorted(names):
        return None, "a layer does not appear exactly once as a module call in the traced graph"
    low = next(n for n in calls if n.target == lower)
    if upper:
        top = next(n for n in calls if n.target == upper)
    else:
        top = next(n for n in graph.nodes if n.op == "output").args[0]
        if not isinstance(top, fx.Node):
            return None, "the model's output is not a single tensor"
    needed: set[fx.Node] = set()
    stack = [top]
    while stack:
        node = stack.pop()
        if node in needed or node is low:
            continue
        needed.add(node)
        if _is_batch_size(node):
            continue
        if node.op == "placeholder":
            return None, f"{upper or 'the output'!r} reads the model input directly, not only {lower!r}"
        stack.extend(node.all_input_nodes)
    sub = fx.Graph()
    env: dict[fx.Node, fx.Node] = {low: sub.placeholder("x")}
    for node in graph.nodes:
        if node in needed:
            if _is_batch_size(node):
                env[node] = sub.call_method("size", (env[low], 0))
            else:
                env[node] = sub.node_copy(node, lambda n: env[n])
    sub.output(env[top])
    return fx.GraphModule(model, sub), ""


class _ReplayBridge(nn.Module):
    """Runs the whole model with ``lower``'s output replaced, stopping after ``upper``; for untraceable models."""

    def __init__(self, model: nn.Module, lower: str, upper: str, input_shape: Sequence[int]):
        super().__init__()
        self.model, self.lower, self.upper = model, lower, upper
        self.input_shape = tuple(input_shape)

    def forward(self, x: torch.Tensor, model_input: torch.Tensor | None = None) -> torch.Tensor:
        if model_input is None:
            model_input = torch.zeros((x.shape[0], *self.input_shape), device=x.device, dtype=x.dtype)
        result: dict[str, torch.Tensor] = {}

        def replace(_m, _i, _o):
            return x

        def stop(_m, _i, output):
            result["out"] = output
            raise _StopForward

        with (
            _module(self.model, self.lower).register_forward_hook(replace),
            _module(self.model, self.upper).register_forward_hook(stop),
            contextlib.suppress(_StopForward),
        ):
            self.model(model_input)
        return result["out"]


def bridge(model: nn.Module, lower: str, upper: str, example: torch.Tensor) -> nn.Module:
    """A module mapping ``lower``'s output to ``upper``'s output (the paper's phi^{l-1,l}).

    ``example`` is a small model-input batch, used to check the bridge reproduces the model.
    """
    sub, why = fx_slice(model, lower, upper)
    if sub is None:
        warnings.warn(f"{lower} -> {upper}: {why}; replaying the whole model instead, which is slower", stacklevel=2)
        sub = _ReplayBridge(model, lower, upper, example.shape[1:])
    with torch.no_grad():
        with capture(model, [lower, upper]) as seen:
            model(example)
        low, up = seen[lower], seen[upper]
        replayed = sub(low)
        again = sub(low, model_input=example) if isinstance(sub, _ReplayBridge) else replayed
    if isinstance(sub, _ReplayBridge):
        if not torch.allclose(replayed, again, rtol=1e-4, atol=1e-5):
            raise LayerError(
                f"layer {upper!r} is not a function of layer {lower!r} alone (it also uses earlier "
                "activations); list layers between which all information flows through the lower one"
            )
    if not torch.allclose(replayed, up, rtol=1e-4, atol=1e-5):
        raise LayerError(f"could not reproduce layer {upper!r} from layer {lower!r}; list consecutive layers")
    return sub


@contextlib.contextmanager
def ablate(model: nn.Module, neurons: dict[str, Sequence[int]], retain: bool = False) -> Iterator[None]:
    """Zero the given neurons' outputs (whole feature maps) while inside the block.

    ``retain=True`` zeroes every *other* neuron of those layers instead. The masking hooks run before
    any other hook on those layers (so ``capture`` sees masked outputs) and are removed on exit.
    """
    with contextlib.ExitStack() as hooks:
        for name, channels in neurons.items():
            index = torch.as_tensor(list(channels), dtype=torch.long)
            hook = _zeroer(index, retain, name)
            hooks.enter_context(_module(model, name).register_forward_hook(hook, prepend=True))
        yield


def _zeroer(index: torch.Tensor, retain: bool, name: str):
    from neurflow_graph.engine.layouts import module_layout

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        layout = module_layout(module, output, name)  # a neuron is zeroed at every position or token
        mask = torch.zeros(layout.width(output), dtype=output.dtype, device=output.device)
        mask[index.to(output.device)] = 1.0
        return layout.keep(output, mask if retain else 1.0 - mask)

    return hook
