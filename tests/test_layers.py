"""Layer validation, the sub-network between two layers on several architectures, hooks and masking."""

import pytest
import torch
from torch import nn

from neurflow_graph.engine.layers import ablate, bridge, capture, layer_widths, validate_layers
from neurflow_graph.errors import LayerError
from neurflow_graph.models.presets import get_preset


@pytest.mark.parametrize("name, size", [("resnet50", 64), ("googlenet", 64), ("alexnet", 224),
                                        ("efficientnet-lite0", 64), ("digits", 32)])
def test_every_consecutive_preset_pair_is_reproduced_by_its_bridge(name, size):
    preset = get_preset(name)
    torch.manual_seed(0)
    model = preset.build().eval()
    example = torch.rand(2, preset.in_channels, size, size)
    assert validate_layers(model, preset.layers, example) == list(preset.layers)
    for upper, lower in zip(preset.layers[:-1], preset.layers[1:], strict=True):
        sub = bridge(model, lower, upper, example)  # raises if it does not reproduce the model
        assert isinstance(sub, torch.fx.GraphModule), f"{lower}->{upper} fell back to full-model replay"
        with torch.no_grad(), capture(model, [lower, upper]) as seen:
            model(example * 0.5)
            torch.testing.assert_close(sub(seen[lower]), seen[upper], rtol=1e-4, atol=1e-5)


class Untraceable(nn.Module):
    """A user's model whose forward branches on tensor values: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 5, 3)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        x = torch.relu(self.a(x))
        if x.sum() > -1e9:  # data-dependent control flow
            x = x * 1.0
        x = torch.relu(self.b(x))
        return self.head(x.mean((2, 3)))


class SkipsOver(nn.Module):
    """``out`` reads the input directly (a skip path around ``mid``), so it is not a function of ``mid`` alone."""

    def __init__(self):
        super().__init__()
        self.mid = nn.Conv2d(3, 3, 1)
        self.out = nn.Identity()

    def forward(self, x):
        return self.out(self.mid(x) + x).mean((2, 3))


def test_untraceable_user_model_uses_the_replay_bridge():
    model = Untraceable().eval()
    example = torch.rand(2, 3, 16, 16)
    with pytest.warns(UserWarning, match="replaying the whole model"):
        sub = bridge(model, "a", "b", example)
    assert type(sub).__name__ == "_ReplayBridge"
    with torch.no_grad(), capture(model, ["a", "b"]) as seen:
        model(example)
        torch.testing.assert_close(sub(seen["a"]), seen["b"])


class UntraceableSkip(SkipsOver):
    """``SkipsOver`` with data-dependent control flow, which torch.fx cannot trace."""

    def forward(self, x):
        y = self.mid(x)
        if y.sum() > -1e9:
            y = y * 1.0
        return self.out(y + x).mean((2, 3))


def test_a_skip_path_around_the_lower_layer_is_held_at_each_input_s_own_value():
    from neurflow_graph.engine.layers import SkipBridge

    model = SkipsOver().eval()
    example = torch.rand(4, 3, 8, 8)
    sub = bridge(model, "mid", "out", example)
    assert isinstance(sub, SkipBridge)  # the input read around `mid` is a side input of the slice
    with torch.no_grad():
        with capture(model, ["mid", "out"]) as seen:
            model(example)
        torch.testing.assert_close(sub(seen["mid"], model_input=example), seen["out"])
        low, sides = sub.sides(example)
        sub.bind(low, sides)
        torch.testing.assert_close(sub(torch.cat([low, 2 * low])), torch.cat([seen["out"], sub(2 * low, example)]))


def test_a_layer_that_is_not_a_function_of_the_lower_one_is_refused_where_it_cannot_be_sliced():
    with (pytest.warns(UserWarning, match="torch.fx cannot trace"),
          pytest.raises(LayerError, match="not a function of layer 'mid'|could not reproduce")):
        bridge(UntraceableSkip().eval(), "mid", "out", torch.rand(2, 3, 8, 8))


def test_unknown_layer_lists_valid_names_and_suggests():
    model = get_preset("digits").build()
    with pytest.raises(LayerError) as info:
        validate_layers(model, ["fc", "conv4"], torch.rand(1, 1, 32, 32))
    message = str(info.value)
    assert "unknown layer 'conv4'" in message and "conv3" in message and "\n" not in message


def test_layers_out_of_forward_order_are_refused_with_the_right_order():
    model = get_preset("digits").build()
    with pytest.raises(LayerError, match=r"list them as \['fc', 'conv3', 'conv2'\]"):
        validate_layers(model, ["fc", "conv2", "conv3"], torch.rand(1, 1, 32, 32))


def test_a_module_called_twice_is_refused():
    tv_model = get_preset("resnet50").build()
    with pytest.raises(LayerError, match="runs 3 times"):
        validate_layers(tv_model, ["fc", "layer1.0.relu"], torch.rand(1, 3, 64, 64))


def test_hooks_are_removed_even_when_the_forward_fails():
    model = get_preset("digits").build()
    with pytest.raises(RuntimeError):
        with capture(model, ["conv1", "conv2"]):
            model(torch.rand(1, 3, 32, 32))  # wrong channel count
    with pytest.raises(RuntimeError):
        with ablate(model, {"conv2": [0]}):
            model(torch.rand(1, 3, 32, 32))
    assert all(not m._forward_hooks for m in model.modules())


def test_masking_neurons_changes_the_subnetwork_output(digits_model, digits_class3, digits_preset):
    x = digits_preset.normalize(digits_class3.images[:4])
    with torch.no_grad(), capture(digits_model, ["conv3"]) as seen:
        base = digits_model(x)
        plain = seen["conv3"].clone()
        with ablate(digits_model, {"conv2": [0, 1, 2, 3]}):
            masked = digits_model(x)
            masked_conv3 = seen["conv3"].clone()
        with ablate(digits_model, {"conv3": [5]}, retain=True):
            digits_model(x)
            retained = seen["conv3"].clone()
    assert not torch.allclose(plain, masked_conv3)
    assert not torch.allclose(base, masked)
    assert torch.count_nonzero(retained[:, [c for c in range(retained.shape[1]) if c != 5]]) == 0
    torch.testing.assert_close(retained[:, 5], plain[:, 5])


class ToChannelsLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class ChannelsLastNet(nn.Module):
    """A conv stem, then a LayerNorm over channels in B×H×W×C layout, as Swin and ConvNeXt blocks do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.to_last = ToChannelsLast()
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.norm(self.to_last(self.conv(x))).mean((1, 2)))


class FixedSize(nn.Module):
    """Resizes every input to 8×8 first, so a wider input cannot show which output axis is the width."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        x = nn.functional.interpolate(x, size=(8, 8))
        return self.head(self.block(x).mean((2, 3)))


def test_a_channels_last_layer_is_read_as_channels_last_not_as_height():
    model, example = ChannelsLastNet().eval(), torch.rand(2, 3, 16, 16)
    validate_layers(model, ["head", "norm"], example)
    assert layer_widths(model, ["head", "norm"], example) == {"head": 2, "norm": 8}  # (2, 16, 16, 8): C last
    assert layer_widths(model, ["head", "conv"], example) == {"head": 2, "conv": 8}  # Conv2d: channels first


def test_a_layer_whose_channel_axis_cannot_be_told_apart_is_refused_unless_its_type_fixes_it():
    model, example = FixedSize().eval(), torch.rand(2, 3, 16, 16)
    with pytest.raises(LayerError, match=r"cannot tell the layout of layer 'block' \(output shape "
                                         r"\(2, 8, 8, 8\)\).*state it"):
        validate_layers(model, ["head", "block"], example)
    assert layer_widths(model, ["head", "block.0"], example) == {"head": 2, "block.0": 8}
    assert layer_widths(model, ["head", "block"], example, {"block": "channels_first"}) == {"head": 2, "block": 8}


def test_outputs_that_are_neither_units_nor_feature_maps_are_refused():
    model = nn.Sequential(nn.Flatten(2), nn.Linear(16, 4), nn.Flatten(1), nn.Linear(12, 2)).eval()
    with pytest.raises(LayerError, match=r"cannot tell the layout of layer '1' \(output shape \(2, 3, 4\)\)"):
        validate_layers(model, ["3", "1"], torch.rand(2, 3, 4, 4))


def test_swin_t_blocks_are_channels_last_and_a_wrong_stated_layout_is_refused_before_any_work(monkeypatch):
    """A real torchvision swin_t (random weights): its stages are B×H×W×C; its final permute is B×C×H×W."""
    from neurflow_graph import ModelSpec, NeurFlow
    from neurflow_graph._compat import import_torchvision

    torch.manual_seed(0)
    model = import_torchvision().models.swin_t().eval()
    images = torch.rand(2, 3, 64, 64)
    assert layer_widths(model, ["head", "permute"], images) == {"head": 1000, "permute": 768}
    assert layer_widths(model, ["head", "features.7"], images) == {"head": 1000, "features.7": 768}  # (2, 2, 2, 768)
    spec = ModelSpec("swin", model, ("head", "features.7"), 64, lambda x: x, layouts={"features.7": "tokens"})
    monkeypatch.setattr("neurflow_graph.engine.pipeline.make_patches", None)  # must never be reached
    with pytest.raises(LayerError, match=r"layer 'features.7' is declared tokens but outputs shape \(2, 2, 2, 768\)"):
        NeurFlow(progress=False, device="cpu").run(spec, 0, images, ["a", "b"])


def _norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize("name, lower, upper", [("resnet50", "layer3.4", "layer3.5"),
                                                ("resnet50", "layer2.3", "layer3.0"),
                                                ("googlenet", "inception4a", "inception4b")])
def test_bridges_fold_batch_norms_into_convolutions_and_leave_the_model_alone(name, lower, upper):
    preset = get_preset(name)
    torch.manual_seed(0)
    model = preset.build().eval()
    for m in model.modules():  # running statistics away from 0 and 1, so that folding has something to fold
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    norms_before = _norms(model)
    example = torch.rand(2, 3, 64, 64)
    folded, plain = bridge(model, lower, upper, example), bridge(model, lower, upper, example, fold=False)
    assert _norms(plain) > 0 and _norms(folded) == 0
    assert _norms(model) == norms_before
    with torch.no_grad(), capture(model, [lower]) as seen:
        model(example * 0.5)
        torch.testing.assert_close(folded(seen[lower]), plain(seen[lower]), rtol=1e-4, atol=1e-5)


class SharedConvOutput(nn.Module):
    """``conv``'s output is read by its batch norm and by a residual sum: folding the norm would change the sum."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.out = nn.Identity()

    def forward(self, x):
        y = self.conv(self.stem(x))
        return self.out(torch.relu(self.bn(y)) + y)


def test_a_convolution_output_read_twice_is_not_folded():
    torch.manual_seed(0)
    model = SharedConvOutput()
    model.bn.running_mean.uniform_(-0.5, 0.5)
    model.bn.running_var.uniform_(0.5, 2.0)
    example = torch.rand(2, 3, 8, 8)
    sub = bridge(model.eval(), "stem", "out", example)
    assert _norms(sub) == 1
    training = bridge(model.train(), "stem", "out", example)  # batch statistics: nothing to fold either
    assert _norms(training) == 1
