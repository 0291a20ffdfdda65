"""Layer layouts on real transformers: IG on token and channels-last layers against Captum, knockouts, errors."""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG

from neurflow_graph._compat import import_torchvision
from neurflow_graph.engine.attribution import IntegratedGradients
from neurflow_graph.engine.layers import ablate, bridge, capture
from neurflow_graph.engine.layouts import Layout, channels_first_bridge, resolve_layouts
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.errors import ConfigError, LayerError
from neurflow_graph.evaluation.knockout import Knockout
from neurflow_graph.evaluation.masking import masked_outputs

VIT_LAYERS = ["heads.head", "encoder.layers.encoder_layer_2", "encoder.layers.encoder_layer_1",
              "encoder.layers.encoder_layer_0"]


def _vit():
    torch.manual_seed(0)
    tv = import_torchvision()
    return tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=4, hidden_dim=64,
                                       mlp_dim=128, num_classes=10).eval()


def _swin():
    torch.manual_seed(0)
    return import_torchvision().models.swin_t().eval()


def _maps(model, layer, images):
    with torch.no_grad(), capture(model, [layer]) as seen:
        model(images)
    return seen[layer]


class _Target(torch.nn.Module):
    """The upper layer's neuron activations (B×C) as a function of the lower layer's native output."""

    def __init__(self, sub, layout):
        super().__init__()
        self.sub, self.layout = sub, layout

    def forward(self, x):
        return self.layout.activations(self.sub(x))


# (model, lower, upper, input side): a token layer pair of a small ViT, a channels-last pair of swin_t.
CASES = {
    "tokens": (_vit, "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1", 32),
    "channels_last": (_swin, "features.5", "features.6", 64),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_ig_equals_captum_per_target_per_patch(case):
    build, lower, upper, side = CASES[case]
    model = build()
    images = torch.randn(6, 3, side, side, generator=torch.Generator().manual_seed(1))
    layouts = resolve_layouts(model, [upper, lower], images[:2])
    assert layouts[lower].kind == layouts[upper].kind == case
    sub = bridge(model, lower, upper, images[:2])
    maps = _maps(model, lower, images)
    targets = np.array([0, 7, 21])
    patch_ids = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [5, 0, 1, 4]])
    engine = IntegratedGradients(n_steps=16).attribute(
        channels_first_bridge(sub, layouts[lower], layouts[upper]),
        lambda ids: layouts[lower].to_channels_first(maps[ids]), targets, patch_ids)
    ig = CaptumIG(_Target(sub, layouts[upper]))
    positions = tuple(range(1, maps.ndim - 1))  # every axis but batch and the channel (last) axis
    for t, target in enumerate(targets):
        x = maps[patch_ids[t]]
        expected = ig.attribute(x, baselines=x * 0, target=int(target), n_steps=16).mean(dim=positions)
        expected = expected.detach().numpy()
        for i in range(len(x)):  # per target, per patch
            assert np.abs(engine.scores[t, i] - expected[i]).max() <= 1e-4 * np.abs(expected[i]).max()


@pytest.mark.parametrize("case", sorted(CASES))
def test_completeness_on_transformer_layers_needs_points_near_the_baseline(case):
    """A block's leading layer norm changes within alpha ~ 1e-3 of the zero baseline: evenly spread Gauss-Legendre
    points miss it, the geometric rule's points do not; completeness holds with it."""
    build, lower, upper, side = CASES[case]
    model = build()
    images = torch.randn(4, 3, side, side, generator=torch.Generator().manual_seed(4))
    layouts = resolve_layouts(model, [upper, lower], images[:2])
    sub = channels_first_bridge(bridge(model, lower, upper, images[:2]), layouts[lower], layouts[upper])
    maps = layouts[lower].to_channels_first(_maps(model, lower, images))
    targets, patch_ids = np.array([2, 11]), np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    errors = {method: IntegratedGradients(n_steps=56, method=method).attribute(
        sub, lambda ids: maps[ids], targets, patch_ids).completeness_error
        for method in ("gausslegendre", "gausslegendre_geometric")}
    assert errors["gausslegendre_geometric"] < 1e-3
    assert errors["gausslegendre_geometric"] < errors["gausslegendre"]


def test_token_activation_modes_and_channels_last_mean():
    model = _vit()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    out = _maps(model, "encoder.layers.encoder_layer_1", images)  # B×17×64: class token then 16 patches
    torch.testing.assert_close(Layout("tokens").activations(out), out[:, 1:].mean(1))
    torch.testing.assert_close(Layout("tokens", tokens="all").activations(out), out.mean(1))
    torch.testing.assert_close(Layout("tokens", tokens="cls").activations(out), out[:, 0])
    maps = torch.randn(2, 5, 6, 7)
    torch.testing.assert_close(Layout("channels_last").activations(maps), maps.mean(dim=(1, 2)))
    assert Layout("channels_last").to_channels_first(maps).shape == (2, 7, 5, 6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_knockout_of_a_dimension_set_equals_zeroing_it_in_the_model(case):
    build, lower, upper, side = CASES[case]
    model = build()
    images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(3))
    patches = make_patches(images, (1.0, 0.5))
    layouts = resolve_layouts(model, [upper, lower], images)
    knock = Knockout(model, patches, lower, upper, lambda x: x, side)
    dims = np.array([1, 4, 9, 33])
    keep = np.ones((2, knock.width), dtype=bool)
    keep[1, dims] = False
    targets = np.array([0, 3, 17])
    got = knock.activations(targets, keep)  # T×2×P
    crops = patches.crops(np.arange(len(patches)), side)
    with torch.no_grad(), ablate(model, {lower: dims}), capture(model, [upper]) as seen:
        model(crops)
    zeroed = layouts[upper].activations(seen[upper])[:, targets].T.numpy()
    with torch.no_grad(), capture(model, [upper]) as seen:
        model(crops)
    plain = layouts[upper].activations(seen[upper])[:, targets].T.numpy()
    np.testing.assert_allclose(got[:, 1], zeroed, rtol=1e-4, atol=1e-4 * np.abs(zeroed).max())
    np.testing.assert_allclose(got[:, 0], plain, rtol=1e-4, atol=1e-4 * np.abs(plain).max())
    assert np.abs(got[:, 1] - got[:, 0]).max() > 1e-3 * np.abs(plain).max()  # the knockout did change something
    # The masking of `evaluate fidelity` and `debug` zeroes the same dimensions at every position or token.
    logits = masked_outputs(model, crops, {lower: keep})
    with torch.no_grad(), ablate(model, {lower: dims}):
        np.testing.assert_allclose(logits[1], model(crops).numpy(), rtol=1e-4, atol=1e-5)


def test_ambiguous_layout_is_one_line_naming_layer_shape_and_fix():
    model = _vit()
    x = torch.randn(2, 3, 32, 32)
    hidden = "encoder.layers.encoder_layer_2.mlp.1"  # the MLP's GELU: B×T×4D, no module type fixes it
    with pytest.raises(LayerError) as info:
        resolve_layouts(model, ["heads.head", hidden], x)
    message = str(info.value)
    assert "\n" not in message and hidden in message and "(2, 17, 128)" in message and "layouts" in message
    assert resolve_layouts(model, ["heads.head", hidden], x, {hidden: "tokens"})[hidden].kind == "tokens"
    with pytest.raises(LayerError, match="declared channels_last but outputs shape"):
        resolve_layouts(model, ["heads.head", hidden], x, {hidden: "channels_last"})
    with pytest.raises(ConfigError, match="layout must be one of"):
        resolve_layouts(model, ["heads.head", hidden], x, {hidden: "sequence"})
    with pytest.raises(ConfigError, match="not listed"):
        resolve_layouts(model, ["heads.head", hidden], x, {"encoder.ln": "tokens"})


@pytest.mark.parametrize("arch, layers", [
    ("vit", VIT_LAYERS),
    ("swin_t", ["head", "features.7.1", "features.7.0", "features.5.5"]),
    ("convnext_tiny", ["classifier.2", "features.7.2", "features.7.0", "features.5.8"]),
])
def test_blocks_are_sliced_by_torch_fx_not_replayed(arch, layers):
    from torch import fx

    model = _vit() if arch == "vit" else getattr(import_torchvision().models, arch)().eval()
    side = 32 if arch == "vit" else 64
    images = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(5))
    for lower, upper in zip(layers[1:], layers[:-1], strict=True):
        sub = bridge(model, lower, upper, images)  # checks the slice reproduces the model
        assert isinstance(sub, fx.GraphModule), f"{lower} -> {upper} fell back to the replay"
