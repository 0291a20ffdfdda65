"""Image debugging on the real digits CNN: the metric, group masking against random masks, and its pages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurflow_graph.debugging import debug_images, group_confidence, layer_groups_from_bundle
from neurflow_graph.engine.layers import capture, neuron_activations
from neurflow_graph.errors import ConfigError


def test_group_confidence_is_the_geometric_mean_of_normalised_activations() -> None:
    acts = np.array([[2.0, 4.0], [1.0, 0.0], [-3.0, 4.0], [4.0, 8.0]])
    top = [4.0, 8.0]
    eps = 1e-6
    got = group_confidence(acts, top, eps)
    expected = [np.exp(np.mean(np.log([max(a, 0) / m + eps for a, m in zip(row, top, strict=True)])))
                for row in acts]
    assert got == pytest.approx(expected)
    assert got[0] == pytest.approx(0.5, rel=1e-5)  # every neuron at half its max
    assert got[1] < 1e-3 and got[2] < 1e-3  # one silent (or negative) neuron sinks the score
    assert got[3] == pytest.approx(1.0, rel=1e-5)
    assert group_confidence(torch.tensor([[1.0, 1.0]]), [0.0, 2.0])[0] < 1e-2  # a never-firing neuron counts as 0
    with pytest.raises(ConfigError, match="activations must be N×2"):
        group_confidence(np.ones((3, 3)), top)


def _class_images(model, preset, class_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    from neurflow_graph.models.digits import digits_images

    images, labels = digits_images(None, split="test")
    with torch.no_grad():
        predicted = model(preset.normalize(images)).argmax(1)
    keep = (predicted == class_index) & (labels == class_index)
    return images[keep], labels[keep]


@pytest.mark.parametrize("class_index", [3, 5, 8])
def test_masking_the_top_group_lowers_the_class_probability_more_than_random_sets(
    digits_model, digits_preset, digits_bundle_dirs, class_index: int
) -> None:
    groups = layer_groups_from_bundle(digits_bundle_dirs(class_index), "conv3")
    top = max(groups, key=lambda g: g.weight_up)  # the group feeding the logit with the largest weight
    images, _ = _class_images(digits_model, digits_preset, class_index)
    result = debug_images(digits_model, images, [top], class_index, normalize=digits_preset.normalize, seeds=8)
    (g,) = result.groups
    assert len(g.random_prob_drop) == 8
    assert g.mean_prob_drop > float(g.random_prob_drop.mean()), (g.mean_prob_drop, g.random_prob_drop)
    assert g.mean_logit_drop > float(g.random_logit_drop.mean())
    assert all(len(s) == len(top.channels) and not set(s) & set(top.channels) for s in g.random_sets)


def test_debug_result_is_consistent_and_repeatable(digits_model, digits_preset, digits_bundle_dir) -> None:
    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images, labels = _class_images(digits_model, digits_preset, 3)
    images = images[:20]
    kwargs = dict(normalize=digits_preset.normalize, seeds=3, top=5, batch_size=7, labels=labels[:20].tolist())
    first = debug_images(digits_model, images, groups, 3, **kwargs)
    again = debug_images(digits_model, images, groups, 3, **kwargs)
    assert not any(m._forward_hooks for m in digits_model.modules())  # masks and captures removed
    with torch.no_grad(), capture(digits_model, ["conv3"]) as seen:
        logits = digits_model(digits_preset.normalize(images))
    acts = neuron_activations(seen["conv3"])
    assert first.logit == pytest.approx(logits[:, 3].numpy(), rel=1e-5, abs=1e-5)
    assert first.layer_width == 64 and first.false_positives.size == 0
    for g, h in zip(first.groups, again.groups, strict=True):
        assert g.random_sets == h.random_sets and np.allclose(g.logit_drop, h.logit_drop)
        expected = group_confidence(acts[:, list(g.group.channels)], g.group.activation_max)
        assert g.metric == pytest.approx(expected, rel=1e-5)
        assert list(g.top_images) == list(np.argsort(-g.logit_drop, kind="stable")[:5])
        assert g.logit_drop.shape == (20,) and g.prob_drop.shape == (20,)
    other = debug_images(digits_model, images, groups, 3, **{**kwargs, "seeds": 3}, seed=1)
    assert other.groups[0].random_sets != first.groups[0].random_sets


def test_debug_parameters_are_validated(digits_model, digits_preset, digits_bundle_dir) -> None:
    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images = torch.rand(2, 1, 32, 32)
    with pytest.raises(ConfigError, match="seeds must be an integer >= 1"):
        debug_images(digits_model, images, groups, 3, normalize=digits_preset.normalize, seeds=0)
    with pytest.raises(ConfigError, match="groups must come from one layer"):
        both = groups + layer_groups_from_bundle(digits_bundle_dir, "conv2")
        debug_images(digits_model, images, both, 3, normalize=digits_preset.normalize)
    from dataclasses import replace

    wide = replace(groups[0], channels=(0, 99), activation_max=(1.0, 1.0))
    with pytest.raises(ConfigError, match="names channel 99 but layer conv3 has 64 channels"):
        debug_images(digits_model, images, [wide], 3, normalize=digits_preset.normalize)
    with pytest.raises(ConfigError, match="layer 'conv1' has no neuron groups in bundle"):
        layer_groups_from_bundle(digits_bundle_dir, "conv1")


def test_debug_pages(digits_model, digits_preset, digits_bundle_dir, tmp_path: Path) -> None:
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.render.debug import write_debug_pages

    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images, labels = digits_images(None, split="test")
    with torch.no_grad():
        keep = digits_model(digits_preset.normalize(images)).argmax(1) == 3  # true and false positives
    result = debug_images(digits_model, images[keep], groups, 3, normalize=digits_preset.normalize, seeds=2,
                          labels=labels[keep].tolist(), sources=[f"d#{i}" for i in keep.nonzero().flatten()])
    assert result.false_positives.size == int((labels[keep] != 3).sum())
    exemplars = {g.group_id: [Path(digits_bundle_dir) / "thumbnails" / "p0.png", None] for g in groups}
    pages = write_debug_pages(result, tmp_path, class_name="3", image_set="digits", exemplars=exemplars)
    assert {"index.html", "report.json"} <= set(pages)
    for g in groups:
        slug = g.group_id.replace("/", "-")
        page = (tmp_path / f"group-{slug}.html").read_text()
        assert page.count("data:image/png;base64,") >= 5 + 1  # top images and the one exemplar found
        assert 'class="grey"' in page  # the missing exemplar
        with Image.open(tmp_path / f"group-{slug}.png") as png:
            assert png.width > 300 and png.height > 300
    report = json.loads((tmp_path / "report.json").read_text())
    assert [g["group_id"] for g in report["groups"]] == [g.group_id for g in groups]
    index = (tmp_path / "index.html").read_text()
    assert "(FP)" in index or result.false_positives.size == 0


def test_debug_masks_through_the_fidelity_slice_and_equals_whole_model_masking(
        digits_model, digits_preset, digits_bundle_dir, capfd) -> None:
    from neurflow_graph.engine.layers import ablate
    from neurflow_graph.evaluation.slicing import from_layer

    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images, _ = _class_images(digits_model, digits_preset, 3)
    images = images[:24]
    inputs = digits_preset.normalize(images)
    forward, start, _ = from_layer(digits_model, inputs, "conv3")
    assert forward is not None and start == "conv3"  # the digits CNN is sliced above conv3, not rerun whole
    result = debug_images(digits_model, images, groups, 3, normalize=digits_preset.normalize, seeds=3,
                          batch_size=10, progress=True)

    def whole_model_drops(channels) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad(), ablate(digits_model, {"conv3": list(channels)}):
            logits = digits_model(inputs).double()
        return (result.logit - logits[:, 3].numpy(), result.prob - logits.softmax(dim=1)[:, 3].numpy())

    for g in result.groups:
        logit_drop, prob_drop = whole_model_drops(g.group.channels)
        assert g.logit_drop == pytest.approx(logit_drop, rel=1e-4, abs=1e-5)
        assert g.prob_drop == pytest.approx(prob_drop, rel=1e-4, abs=1e-6)
        for drawn, mean_drop in zip(g.random_sets, g.random_logit_drop, strict=True):
            assert mean_drop == pytest.approx(whole_model_drops(drawn)[0].mean(), rel=1e-4, abs=1e-5)
    bars = capfd.readouterr().err
    for g in result.groups:  # one progress bar per group, counting its masks (the group's and one per seed)
        assert f"mask {g.group.group_id} ({len(g.group.channels)} neurons, {len(images)} images)" in bars
    assert "/4" in bars
