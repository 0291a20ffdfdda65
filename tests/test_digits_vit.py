"""The digits ViT: trained once, cached, its accuracy recorded; residual-stream and MLP-hidden sites nameable."""

import numpy as np
import pytest
import torch

from neurflow_graph.engine.activations import compute_activations
from neurflow_graph.engine.digits import accuracy, digits_images
from neurflow_graph.engine.digits_vit import MLP_DIM, digits_vit_info, load_digits_vit
from neurflow_graph.engine.layers import validate_layers
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.engine.presets import get_preset
from neurflow_graph.errors import LayerError


@pytest.fixture(scope="module")
def vit():
    return get_preset("digits-vit").build(weights="DIGITS_VIT_V1")


def test_cached_model_is_the_recorded_one(vit):
    info = digits_vit_info()
    test_x, test_y = digits_images(split="test")
    assert info["test_accuracy"] == pytest.approx(accuracy(vit, test_x, test_y), abs=1e-4)
    assert info["test_accuracy"] > 5 * 0.1  # far above chance over ten digits
    reloaded = load_digits_vit()
    assert all(torch.equal(a, b) for a, b in zip(vit.state_dict().values(), reloaded.state_dict().values(),
                                                  strict=True))


def test_residual_and_mlp_sites_are_nameable(vit):
    preset = get_preset("digits-vit")
    hidden = "encoder.layers.encoder_layer_1.mlp.1"
    layers = ("heads.head", "encoder.layers.encoder_layer_2", hidden, "encoder.layers.encoder_layer_0")
    images, _ = digits_images(3, split="test")
    example = preset.normalize(images[:2])
    with pytest.raises(LayerError, match=hidden):  # a GELU's B×T×4D output does not fix its layout
        validate_layers(vit, layers, example)
    validate_layers(vit, layers, example, preset.layouts_of(layers))
    from neurflow_graph.engine.pipeline import ModelSpec

    spec = ModelSpec("digits-vit", vit, layers, preset.input_size, preset.normalize, layouts=preset.layouts_of(layers))
    layouts = spec.resolve_layouts(vit, example)
    assert [layouts[n].kind for n in layers] == ["units", "tokens", "tokens", "tokens"]
    patches = make_patches(images[:2], (1.0,))
    acts = compute_activations(vit, patches, list(layers), preset.normalize, preset.input_size)
    assert acts.values[hidden].shape == (len(patches), MLP_DIM)
    assert acts.values["encoder.layers.encoder_layer_2"].shape == (len(patches), 64)
    assert np.all(np.isfinite(acts.values[hidden]))
