"""The transformer and ConvNeXt presets, with random weights (nothing downloaded), end to end on skimage photos."""

from collections import Counter

import numpy as np
import pytest
import torch

from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow
from neurflow_graph.models.images import skimage_images
from neurflow_graph.models.presets import get_preset
from neurflow_graph.recipes import load_recipe

PRESETS = {"vit_b_16": "tokens", "swin_t": "channels_last", "convnext_tiny": "channels_first"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_recipe_names_the_preset_and_its_torchvision_weights(name):
    from pathlib import Path

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "ingest" / f"{name}-imagenet.toml")
    preset = get_preset(name)
    assert recipe.preset == name and recipe.weights in preset.weight_names
    assert recipe.params.method == "gausslegendre_geometric"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_runs_end_to_end_with_random_weights(name):
    preset = get_preset(name)
    torch.manual_seed(0)
    model = preset.build(weights=None)
    photos = skimage_images(["chelsea", "astronaut", "coffee"], preset.input_size, augment=1)
    with torch.no_grad():
        predicted = model(preset.normalize(photos.images)).argmax(dim=1).numpy()
    class_index = Counter(predicted.tolist()).most_common(1)[0][0]  # random weights: the class they predict
    keep = np.nonzero(predicted == class_index)[0]
    layers = preset.layers[:3]  # the logit layer and two blocks keep a CPU run short
    spec = ModelSpec(name, model, layers, preset.input_size, preset.normalize, layouts=preset.layouts_of(layers))
    flow = NeurFlow(progress=False, k=4, tau=2, n_steps=14, method="gausslegendre_geometric",
                    granularities=(1.0, 0.5), seed=0, device="cpu")
    bundle = flow.run(spec, int(class_index), photos.images[keep], [photos.sha256[i] for i in keep])
    assert bundle.meta.complete and list(bundle.meta.layers) == list(layers)
    assert [tr.layer for tr in bundle.circuit.transitions] == list(layers[:-1])
    assert spec.resolve_layouts(model, preset.normalize(photos.images[:2]))[layers[1]].kind == PRESETS[name]
    for stats in bundle.meta.layer_stats.values():
        assert np.isfinite(stats.completeness_error)
    assert len(bundle.groups.groups) >= 1


@pytest.mark.slow
def test_timm_vit_is_sliced_and_runs_end_to_end_with_random_weights():
    """A timm ViT (random weights, nothing downloaded): blocks and an MLP-unit layer sliced by torch.fx, end to end."""
    import warnings

    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'neurflow-graph[timm]')")
    from torch import fx

    from neurflow_graph.engine.layers import SkipBridge, bridge

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    preset = get_preset("vit_b_16")  # the same 224-px ImageNet input and normalisation
    photos = skimage_images(["chelsea", "astronaut", "coffee"], preset.input_size, augment=1)
    inputs = preset.normalize(photos.images)
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1).numpy()
    class_index = Counter(predicted.tolist()).most_common(1)[0][0]
    keep = np.nonzero(predicted == class_index)[0]
    layers = ("head", "blocks.11", "blocks.11.mlp.act", "blocks.10")
    spec = ModelSpec("timm-vit_tiny_patch16_224", model, layers, preset.input_size, preset.normalize,
                     layouts={"blocks.11.mlp.act": "tokens"})
    layouts = spec.resolve_layouts(model, inputs[:2])
    assert [layouts[n].kind for n in layers] == ["units", "tokens", "tokens", "tokens"]  # timm's Block fixes it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the whole-model replay
        subs = [bridge(model, lower, upper, inputs[:2]) for upper, lower in zip(layers[:-1], layers[1:], strict=True)]
    assert isinstance(subs[1], SkipBridge)  # the block's output holds its skip path around the MLP units
    assert isinstance(subs[0], fx.GraphModule) and isinstance(subs[2], fx.GraphModule)
    flow = NeurFlow(progress=False, k=4, tau=2, n_steps=14, method="gausslegendre_geometric",
                    granularities=(1.0, 0.5), seed=0, device="cpu")
    bundle = flow.run(spec, int(class_index), photos.images[keep], [photos.sha256[i] for i in keep])
    assert bundle.meta.complete and [tr.layer for tr in bundle.circuit.transitions] == list(layers[:-1])
    for stats in bundle.meta.layer_stats.values():
        assert np.isfinite(stats.completeness_error)
    assert len(bundle.groups.groups) >= 1
