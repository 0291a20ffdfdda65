"""Named layers of any ``nn.Module``: validation, activation capture and the sub-network between two layers."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import fx, nn

from neurflow_graph.engine.devices import float32_matmuls
from neurflow_graph.engine.hooks import SkipBridge, _module, capture, skip_of  # noqa: F401 - importers of layers keep them
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
        # Convolutions stay module calls even when a package subclasses them (same-padding convolutions), so that
        # ``fold_batch_norms`` sees them.
        return (module_qualified_name in self.leaves or isinstance(m, nn.modules.conv._ConvNd)
                or super().is_leaf_module(m, module_qualified_name))


def _trace(model: nn.Module, leaves: set[str]) -> fx.Graph:
    """The model's graph with ``leaves`` kept as module calls and optional forward arguments at their defaults.

    The model is only ever called with its input, so extra arguments with defaults (timm's ``attn_mask=None``,
    ``is_causal=False``) are constants, not inputs the slice would have to be given.
    """
    import inspect

    try:
        params = list(inspect.signature(model.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    concrete = {p.name: p.default for p in params
                if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD}
    return _LeafTracer(leaves).trace(model, concrete_args=concrete or None)


def _traced(model: nn.Module, names: set[str]) -> tuple[fx.Graph | None, dict[str, fx.Node], str]:
    """(graph, the call node of each of ``names``, "") or (None, {}, why) when tracing fails or a name is not
    exactly one module call."""
    try:
        graph = _trace(model, names)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: fall back
        return None, {}, f"torch.fx cannot trace the model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target in names]
    if sorted(n.target for n in calls) != sorted(names):
        return None, {}, "a layer does not appear exactly once as a module call in the traced graph"
    return graph, {n.target: n for n in calls}, ""


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
    graph, calls, why = _traced(model, names)
    if graph is None:
        return None, why
    low = calls[lower]
    if upper:
        top = calls[upper]
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
    return fx.GraphModule(model, _subgraph(graph, low, top, needed)), ""


def _subgraph(graph: fx.Graph, low: fx.Node, top: fx.Node, needed: set[fx.Node],
              sides: Sequence[fx.Node] = ()) -> fx.Graph:
    """The ``needed`` nodes of ``graph`` as a graph of (``low``'s value, then ``sides``' values) giving ``top``'s."""
    sub = fx.Graph()
    env: dict[fx.Node, fx.Node] = {low: sub.placeholder("x")}
    env.update({node: sub.placeholder(f"side_{i}") for i, node in enumerate(sides)})
    for node in graph.nodes:
        if node in needed:
            if _is_batch_size(node):
                env[node] = sub.call_method("size", (env[low], 0))
            else:
                env[node] = sub.node_copy(node, lambda n: env[n])
    sub.output(env[top])
    return sub


def _reachable(starts: Sequence[fx.Node], downstream: bool = True) -> set[fx.Node]:
    """``starts`` and every node computed from them (``downstream``), or every node they are computed from."""
    seen: set[fx.Node] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(node.users if downstream else node.all_input_nodes)
    return seen


def skip_slice(model: nn.Module, lower: str, upper: str, channel_axis: int = 1) -> tuple[SkipBridge | None, str]:
    """The torch.fx subgraph computing ``upper`` from ``lower``'s output and the activations that bypass ``lower``.

    For a layer inside a residual block (a transformer's MLP hidden units), the block's output adds its
    skip path, which does not depend on ``lower``; those values become side inputs of the slice, computed
    from the model input by a second subgraph (``SkipBridge``). Returns (None, why not) where it cannot.
    """
    inside = lower.startswith(upper + ".")  # e.g. a block's MLP units below the block's own output
    leaves = {lower} if inside else {lower, upper}
    graph, calls, why = _traced(model, leaves)
    if graph is None:
        return None, why
    low = calls[lower]
    if inside:  # the upper module's output: the last node traced inside it (checked by reproduction)
        top = next((n for n in reversed(graph.nodes) if _runs_inside(n, upper)), None)
        if top is None:
            return None, f"torch.fx did not record which nodes run inside {upper!r}"
    else:
        top = calls[upper]
    below = _reachable([low])
    from_input = _reachable([n for n in graph.nodes if n.op == "placeholder"])
    if top not in below:
        return None, f"{upper!r} does not read {lower!r} at all"
    needed: set[fx.Node] = set()
    sides: set[fx.Node] = set()
    stack = [top]
    while stack:
        node = stack.pop()
        if node in needed or node in sides or node is low:
            continue
        if node not in below and node in from_input and not _is_batch_size(node):
            sides.add(node)  # computed from the model input without the lower layer: held at its own value
            continue
        needed.add(node)
        if not _is_batch_size(node):
            stack.extend(node.all_input_nodes)
    side_nodes = [n for n in graph.nodes if n in sides]
    core = _subgraph(graph, low, top, needed, side_nodes)
    context = fx.Graph()
    ctx_env: dict[fx.Node, fx.Node] = {}
    wanted = _reachable([low, *side_nodes], downstream=False)
    for node in graph.nodes:
        if node in wanted:
            ctx_env[node] = context.node_copy(node, lambda n: ctx_env[n])
    context.output((ctx_env[low], *(ctx_env[n] for n in side_nodes)))
    return SkipBridge(fx.GraphModule(model, core), fx.GraphModule(model, context), channel_axis), ""


def _runs_inside(node: fx.Node, name: str) -> bool:
    """Whether the tracer recorded ``node`` as traced inside module ``name`` (keys or qualified names)."""
    stack = node.meta.get("nn_module_stack") or {}
    return name in stack or any(isinstance(v, tuple) and v and v[0] == name for v in stack.values())


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


def bridge(model: nn.Module, lower: str, upper: str, example: torch.Tensor, fold: bool = True) -> nn.Module:
    """A module mapping ``lower``'s output to ``upper``'s output (the paper's phi^{l-1,l}).

    ``example`` is a small model-input batch, used to check the bridge reproduces the model. Where
    ``upper`` also reads a skip path around ``lower`` (a transformer block's residual around its MLP),
    it is a ``SkipBridge`` holding that path at each input's own value (see ``layouts.held_inputs``).
    With ``fold``, a traced bridge has its eval-mode batch norms folded into the convolutions they follow
    (``fold_batch_norms``): the same function, a fifth less time per IG pass; the model is not changed.
    The checks run in strict fp32 whatever the caller's TF32 setting: CUDA's TF32 alone would fail them.
    """
    with float32_matmuls(tf32=False):
        return _bridge(model, lower, upper, example, fold)


def _bridge(model: nn.Module, lower: str, upper: str, example: torch.Tensor, fold: bool) -> nn.Module:
    sub, why = fx_slice(model, lower, upper)
    if sub is None:
        skip = _verified_skip(model, lower, upper, example)
        if skip is not None:
            return skip
    if sub is None:
        warnings.warn(f"{lower} -> {upper}: {why}; replaying the whole model instead, which is slower", stacklevel=3)
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
    folded = fold_batch_norms(sub, low) if fold and isinstance(sub, fx.GraphModule) else None
    if folded is not None:
        with torch.no_grad():  # rounding moves near-zero values most: compared on the output's scale
            if (folded(low) - up).abs().max() <= 1e-4 * up.abs().max():
                return folded
    return sub


def fold_batch_norms(sub: nn.Module, x: torch.Tensor) -> nn.Module | None:
    """A copy of ``sub`` in which each eval-mode batch norm that reads a convolution's output is folded into it.

    The pairs are found by running ``sub`` on ``x`` (a norm whose input is the very tensor a convolution returned,
    each called once); None when there is none. A convolution whose output another module also reads would change
    that reader too, so the caller checks the copy against the original (``bridge`` does).
    """
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.conv import _ConvNd
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    names = {id(m): name for name, m in sub.named_modules()}
    calls: dict[str, int] = {}
    made: dict[int, str] = {}  # id of a convolution's output -> the convolution
    keep: list[torch.Tensor] = []  # outputs stay alive so that their ids stay unique
    pairs: list[tuple[str, str]] = []

    def after_conv(module, _inputs, output):
        name = names[id(module)]
        calls[name] = calls.get(name, 0) + 1
        if isinstance(output, torch.Tensor):
            made[id(output)] = name
            keep.append(output)

    def before_norm(module, inputs):
        name = names[id(module)]
        calls[name] = calls.get(name, 0) + 1
        if inputs and id(inputs[0]) in made:
            pairs.append((made[id(inputs[0])], name))

    hooks = []
    for m in sub.modules():
        if isinstance(m, _ConvNd) and not m.transposed:
            hooks.append(m.register_forward_hook(after_conv))
        elif isinstance(m, _BatchNorm) and not m.training and m.running_mean is not None and m.running_var is not None:
            hooks.append(m.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            sub(x)
    finally:
        for h in hooks:
            h.remove()
    pairs = [(c, b) for c, b in pairs if calls[c] == 1 and calls[b] == 1]
    if not pairs:
        return None
    folded = copy.deepcopy(sub)
    for conv_name, norm_name in pairs:
        conv, norm = folded.get_submodule(conv_name), folded.get_submodule(norm_name)
        conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var,
                                                      norm.eps, norm.weight, norm.bias)
        folded.set_submodule(norm_name, nn.Identity())
    return folded


def _verified_skip(model: nn.Module, lower: str, upper: str, example: torch.Tensor) -> SkipBridge | None:
    """The skip-path slice from ``lower`` to ``upper`` when it reproduces the model on ``example``, else None."""
    from .layouts import layout_of

    with torch.no_grad(), capture(model, [lower, upper]) as seen:
        model(example)
    skip, _why = skip_slice(model, lower, upper, layout_of(model, lower, seen[lower]).channel_axis)
    if skip is None:
        return None
    try:
        with torch.no_grad():
            low, sides = skip.sides(example)
            ok = (all(isinstance(s, torch.Tensor) and s.shape[:1] == low.shape[:1] for s in sides)
                  and torch.allclose(low, seen[lower], rtol=1e-4, atol=1e-5)
                  and torch.allclose(skip(seen[lower], model_input=example), seen[upper], rtol=1e-4, atol=1e-5))
    except Exception:  # noqa: BLE001 - a slice that fails to run is not used
        return None
    return skip if ok else None


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
