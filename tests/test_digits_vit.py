"""The digits ViT: trained once, cached, its accuracy recorded; residual-stream and MLP-hidden sites nameable."""

import numpy as np
import pytest
import torch

from neurflow_graph.engine.activations import compute_activations
from neurflow_graph.engine.layers import validate_layers
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.errors import LayerError
from neurflow_graph.models.digits import accuracy, digits_images
from neurflow_graph.models.digits_vit import MLP_DIM, digits_vit_info, load_digits_vit
from neurflow_graph.models.presets import get_preset


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


MLP = [f"encoder.layers.encoder_layer_{i}.mlp.1" for i in range(3)]
BLOCK = [f"encoder.layers.encoder_layer_{i}" for i in range(3)]
# (lower MLP-hidden layer, upper layer): to the logit, to the next block's MLP units, to its own block's output
# (the upper module contains the lower one), and to the next block's output (a mixed list).
MLP_TRANSITIONS = [(MLP[2], "heads.head"), (MLP[1], MLP[2]), (MLP[1], BLOCK[1]), (MLP[0], BLOCK[1])]


def _resolved(vit, layers, example):
    from neurflow_graph.engine.layouts import resolve_layouts

    return resolve_layouts(vit, layers, example, get_preset("digits-vit").layouts_of(tuple(layers)))


def _patch_inputs(n_images=3):
    preset = get_preset("digits-vit")
    images = digits_images(3, split="test")[0][:n_images]
    patches = make_patches(images, (1.0, 0.5))
    return patches, preset.normalize(patches.crops(np.arange(len(patches)), preset.input_size))


@pytest.mark.parametrize("lower, upper", MLP_TRANSITIONS)
def test_engine_ig_from_mlp_units_holds_the_skip_path_and_equals_captum(vit, lower, upper):
    """IG from a block's MLP units, the block's skip path x + attn(ln_1(x)) held at each patch's own value:
    per target and patch equal to Captum's with that path as an additional forward argument."""
    from captum.attr import IntegratedGradients as CaptumIG

    from neurflow_graph.engine.attribution import IntegratedGradients
    from neurflow_graph.engine.layers import SkipBridge, bridge, capture
    from neurflow_graph.engine.layouts import channels_first_bridge, held_inputs

    patches, inputs = _patch_inputs()
    layouts = _resolved(vit, [upper, lower], inputs[:2])
    sub = bridge(vit, lower, upper, inputs[:2])
    assert isinstance(sub, SkipBridge)  # a torch.fx slice with side inputs, not the whole-model replay
    with torch.no_grad(), capture(vit, [lower]) as seen:
        vit(inputs)
    maps = seen[lower]
    view = channels_first_bridge(sub, layouts[lower], layouts[upper])
    targets = np.array([0, 3, 9])
    patch_ids = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [5, 0, 1, 4]]) + len(patches) // 3
    engine = IntegratedGradients(n_steps=16).attribute(
        view, held_inputs(view, lambda ids: layouts[lower].to_channels_first(maps[ids]), lambda ids: inputs[ids]),
        targets, patch_ids)
    _low, sides = sub.sides(inputs)

    class Target(torch.nn.Module):
        def forward(self, x, *skip):
            return layouts[upper].activations(sub.core(x, *skip))

    ig = CaptumIG(Target())
    for t, target in enumerate(targets):
        x = maps[patch_ids[t]]
        skip = tuple(s[patch_ids[t]] for s in sides)
        expected = ig.attribute(x, baselines=x * 0, target=int(target), n_steps=16,
                                additional_forward_args=skip).mean(dim=1).detach().numpy()
        for i in range(len(x)):
            assert np.abs(engine.scores[t, i] - expected[i]).max() <= 1e-4 * np.abs(expected[i]).max()
    # Completeness per patch: f(x) - f(0) is each patch's own, f(0) being the model with every MLP unit zeroed.
    from neurflow_graph.engine.layers import ablate

    width = maps.shape[-1]
    with torch.no_grad(), capture(vit, [upper]) as seen:
        vit(inputs)
        full = layouts[upper].activations(seen[upper]).numpy()
        with ablate(vit, {lower: range(width)}):
            vit(inputs)
        zero = layouts[upper].activations(seen[upper]).numpy()
    expected_diff = np.stack([full[patch_ids[t], target] - zero[patch_ids[t], target]
                              for t, target in enumerate(targets)])
    np.testing.assert_allclose(engine.output_diff, expected_diff, rtol=1e-4, atol=1e-5 * np.abs(full).max())
    assert np.ptp(zero[patch_ids.ravel(), targets[0]]) > 0  # the baselines differ per patch: the skip path's
    total = engine.scores.sum(-1) * maps.shape[1]  # scores are means over the tokens; the gap uses their sum
    np.testing.assert_allclose(total - engine.delta, engine.output_diff, rtol=1e-4, atol=1e-6)
    if upper == BLOCK[1] and lower == MLP[1]:  # affine in the MLP units: IG is exact, completeness to fp32
        assert engine.completeness_error < 1e-5


def test_knockout_and_masking_of_mlp_units_equal_zeroing_them_in_the_model(vit):
    """Optimality's knockouts and fidelity's/debug's masks on MLP units, through the skip-path bridge."""
    from neurflow_graph.engine.layers import ablate, capture
    from neurflow_graph.evaluation.knockout import Knockout
    from neurflow_graph.evaluation.masking import masked_outputs

    preset = get_preset("digits-vit")
    patches, inputs = _patch_inputs(2)
    lower, upper = MLP[1], BLOCK[2]
    layouts = _resolved(vit, [upper, lower], inputs[:2])
    knock = Knockout(vit, patches, lower, upper, preset.normalize, preset.input_size, batch_size=16)
    assert knock.skip is not None and knock.width == MLP_DIM
    units = np.array([1, 17, 40, 99, 200])
    keep = np.ones((2, knock.width), dtype=bool)
    keep[1, units] = False
    targets = np.array([0, 5, 63])
    got = knock.activations(targets, keep)  # T×2×P
    with torch.no_grad(), capture(vit, [upper]) as seen:
        vit(inputs)
        plain = layouts[upper].activations(seen[upper])[:, targets].T.numpy()
        with ablate(vit, {lower: units}):
            vit(inputs)
        zeroed = layouts[upper].activations(seen[upper])[:, targets].T.numpy()
    scale = np.abs(plain).max()
    np.testing.assert_allclose(got[:, 0], plain, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(got[:, 1], zeroed, rtol=1e-4, atol=1e-4 * scale)
    assert np.abs(got[:, 1] - got[:, 0]).max() > 1e-3 * scale
    logits = masked_outputs(vit, inputs, {lower: keep})
    with torch.no_grad(), ablate(vit, {lower: units}):
        np.testing.assert_allclose(logits[1], vit(inputs).numpy(), rtol=1e-4, atol=1e-5)


def test_a_misaligned_batch_is_refused_not_read_with_the_wrong_skip_path(vit):
    from neurflow_graph.engine.layers import bridge

    _patches, inputs = _patch_inputs(1)
    _resolved(vit, [BLOCK[1], MLP[1]], inputs[:2])
    sub = bridge(vit, MLP[1], BLOCK[1], inputs[:2])
    low, sides = sub.sides(inputs[:4])
    with pytest.raises(LayerError, match="model_input"):
        sub(low)  # nothing bound
    sub.bind(low, sides)
    torch.testing.assert_close(sub(low.repeat(3, 1, 1) * 0.5), sub(low * 0.5, model_input=inputs[:4]).repeat(3, 1, 1))
    with pytest.raises(LayerError, match="per-neuron multiple"):
        sub(low.flip(0))  # rows of other patches than the bound ones


@pytest.mark.slow
def test_mixed_residual_and_mlp_circuit_runs_end_to_end_and_is_debugged(vit, tmp_path):
    """A circuit through MLP units and block outputs: concepts, IG, groups, the bundle, fidelity and debug masking."""
    from neurflow_graph.bundle.files import write_bundle
    from neurflow_graph.debugging import debug_images
    from neurflow_graph.debugging.store import layer_groups_from_bundle
    from neurflow_graph.engine.layers import ablate
    from neurflow_graph.engine.pipeline import ModelSpec, NeurFlow
    from neurflow_graph.evaluation.fidelity import evaluate_fidelity
    from neurflow_graph.evaluation.subject import subject_from_bundle

    preset = get_preset("digits-vit")
    layers = ("heads.head", MLP[2], BLOCK[1], MLP[0])
    images, _ = digits_images(3, split="test")
    with torch.no_grad():
        predicted = vit(preset.normalize(images)).argmax(1).numpy()
    images = images[predicted == 3][:4]
    spec = ModelSpec("digits-vit", vit, layers, preset.input_size, preset.normalize, layouts=preset.layouts_of(layers))
    flow = NeurFlow(progress=False, k=8, tau=3, n_steps=14, method="gausslegendre_geometric", granularities=(1.0, 0.5),
                    seed=0, device="cpu")
    bundle = flow.run(spec, 3, images, [f"img{i}" for i in range(len(images))])
    assert bundle.meta.complete and [tr.layer for tr in bundle.circuit.transitions] == list(layers[:-1])
    for stats in bundle.meta.layer_stats.values():
        assert np.isfinite(stats.completeness_error)
    assert any(g.layer == MLP[2] for g in bundle.groups.groups)
    out = write_bundle(bundle, tmp_path / "run")
    table = evaluate_fidelity(subject_from_bundle(out, spec), taus=(2,), samples=2)
    assert set(table.column("layer").to_pylist()) == set(layers[1:])
    groups = layer_groups_from_bundle(out, MLP[2])
    result = debug_images(vit, images, groups, 3, normalize=preset.normalize, seeds=2, batch_size=8)
    for g in result.groups:
        with torch.no_grad(), ablate(vit, {MLP[2]: list(g.group.channels)}):
            logits = vit(preset.normalize(images)).double()
        np.testing.assert_allclose(g.logit_drop, result.logit - logits[:, 3].numpy(), rtol=1e-4, atol=1e-5)
