"""Presets name real layers in forward order, build offline, and load checkpoints strictly."""

from __future__ import annotations

import pytest
import torch

from neurflow_graph._compat import import_torchvision
from neurflow_graph.engine.layers import call_order
from neurflow_graph.errors import ConfigError
from neurflow_graph.models.digits import DigitsCNN, digits_images
from neurflow_graph.models.images import skimage_images
from neurflow_graph.models.presets import get_preset, load_checkpoint, preset_names

CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.mark.parametrize("name", preset_names())
def test_layers_exist_and_run_in_forward_order(name: str) -> None:
    preset = get_preset(name)
    model = preset.build()
    assert not model.training
    modules = dict(model.named_modules())
    assert [layer for layer in preset.layers if layer not in modules] == []
    x = torch.rand(1, preset.in_channels, preset.input_size, preset.input_size)
    assert call_order(model, preset.layers, x) == list(reversed(preset.layers))
    assert len(preset.mean) == len(preset.std) == preset.in_channels
    assert len(preset.class_names()) == model(x).shape[1]
    assert not [m for m in model.modules() if getattr(m, "inplace", False) is True]


def test_unknown_preset_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_preset("vgg16")
    message = str(info.value)
    assert "'vgg16'" in message and "\n" not in message
    for name in preset_names():
        assert name in message


def test_weight_names_match_torchvision() -> None:
    torchvision = import_torchvision()
    for name in ("resnet50", "googlenet", "alexnet"):
        enum = torchvision.models.get_model_weights(name)
        preset = get_preset(name)
        assert set(preset.weight_names) == {w.name for w in enum}
        assert preset.weight_names[0] == enum.DEFAULT.name
    with pytest.raises(ConfigError, match="unknown weights 'IMAGENET9K' for resnet50; use one of DEFAULT"):
        get_preset("resnet50").build(weights="IMAGENET9K")


def test_efficientnet_lite0_weights_see_a_cat_in_chelsea() -> None:
    preset = get_preset("efficientnet-lite0")
    model = preset.build(weights="IMAGENET1K_V1")
    chelsea = skimage_images(["chelsea"], preset.input_size)
    with torch.no_grad():
        probs = model(preset.normalize(chelsea.images)).softmax(dim=1)[0]
    top = int(probs.argmax())
    assert top in CAT_CLASSES
    assert preset.class_names()[top] in {"tabby", "tiger cat", "Egyptian cat"}
    assert float(probs[sorted(CAT_CLASSES)].sum()) > 0.5


def test_digits_preset_builds_the_trained_model() -> None:
    # Trains into, or loads from, the session's cache folder ($NEURFLOW_GRAPH_CACHE_DIR, tests/conftest.py).
    preset = get_preset("digits")
    model = preset.build(weights="DEFAULT")
    images, labels = digits_images(split="test")
    with torch.no_grad():
        predicted = model(preset.normalize(images)).argmax(dim=1)
    assert float((predicted == labels).float().mean()) >= 0.95
    assert preset.class_names() == [str(d) for d in range(10)]


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model"])
def test_checkpoint_round_trip(tmp_path, wrap: str) -> None:
    source = DigitsCNN()
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # as saved from DataParallel
    payload = state if wrap == "plain" else {wrap: state, "epoch": 3}
    path = tmp_path / "digits.pt"
    torch.save(payload, path)
    preset = get_preset("digits")
    for model in (preset.build(checkpoint=path), preset.build(weights=str(path)), load_checkpoint(DigitsCNN(), path)):
        for key, value in source.state_dict().items():
            assert torch.equal(model.state_dict()[key], value)


def test_checkpoint_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_checkpoint(DigitsCNN(), tmp_path / "missing.pt")
    assert "\n" not in str(info.value)

    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(ConfigError, match="does not fit DigitsCNN: 8 missing keys") as info:
        load_checkpoint(DigitsCNN(), other)
    assert "\n" not in str(info.value)

    wrong_shape = tmp_path / "wide.pt"
    state = DigitsCNN().state_dict()
    state["fc.bias"] = torch.zeros(11)
    torch.save(state, wrong_shape)
    with pytest.raises(ConfigError, match=r"fc.bias has shape \(11,\)"):
        load_checkpoint(DigitsCNN(), wrong_shape)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="not a weights-only torch file") as info:
        load_checkpoint(DigitsCNN(), garbage)
    assert "\n" not in str(info.value)

    with pytest.raises(ConfigError, match="not both"):
        get_preset("digits").build(weights="DIGITS_V1", checkpoint=other)


def test_googlenet_checkpoint_with_aux_heads(tmp_path) -> None:
    torchvision = import_torchvision()
    released = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False)
    path = tmp_path / "googlenet.pth"
    torch.save(released.state_dict(), path)
    model = get_preset("googlenet").build(checkpoint=path)
    assert model.aux1 is None and model.transform_input
    assert torch.equal(model.fc.weight, released.fc.weight)
