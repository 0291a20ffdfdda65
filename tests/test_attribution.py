"""The batched IG engine against Captum (the reference the authors used) on the real digits model."""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG

from neurflow_graph.engine import attribution
from neurflow_graph.engine.activations import compute_activations, feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients, Tuning, quadrature
from neurflow_graph.engine.layers import bridge, neuron_activations
from neurflow_graph.engine.memory import peak_live_bytes
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.errors import ConfigError


class _Means(torch.nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return neuron_activations(self.sub(x))


@pytest.fixture(scope="module")
def setting(digits_model, digits_preset, digits_class3):
    patches = make_patches(digits_class3.images[:3])
    example = digits_preset.normalize(digits_class3.images[:2])
    sub = bridge(digits_model, "conv2", "conv3", example)
    maps = feature_maps(digits_model, patches, "conv2", np.arange(len(patches)), digits_preset.normalize, 32)
    rng = np.random.default_rng(0)
    targets = np.array([1, 5, 9, 30])
    patch_ids = np.stack([rng.choice(len(patches), 10, replace=False) for _ in targets])
    return sub, maps, targets, patch_ids


def _captum(sub, maps, targets, patch_ids, n_steps, method):
    ig = CaptumIG(_Means(sub))
    out = np.zeros((*patch_ids.shape, maps.shape[1]), dtype=np.float32)
    for t, target in enumerate(targets):
        for i0 in range(0, patch_ids.shape[1], 4):  # 4 patches per call, like the authors' script
            x = maps[patch_ids[t, i0 : i0 + 4]]
            attr = ig.attribute(x, baselines=x * 0, target=int(target), n_steps=n_steps, method=method)
            out[t, i0 : i0 + 4] = attr.mean(dim=(2, 3)).detach().numpy()
    return out


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_right", "riemann_trapezoid"])
def test_engine_equals_captum_per_target_per_patch(setting, method):
    sub, maps, targets, patch_ids = setting
    expected = _captum(sub, maps, targets, patch_ids, 20, method)
    got = IntegratedGradients(n_steps=20, method=method).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    if method == "riemann_trapezoid":  # Captum's trapezoid weights sum to (n-1)/n; ours sum to 1
        expected = expected * 20 / 19
    assert np.abs(got.scores - expected).max() <= 1e-4 * np.abs(expected).max()


def test_batch_size_does_not_change_results(setting):
    sub, maps, targets, patch_ids = setting
    results = [
        IntegratedGradients(n_steps=12, internal_batch_size=size).attribute(
            sub, lambda ids: maps[ids], targets, patch_ids
        )
        for size in (1, 7, None)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.scores, results[0].scores, rtol=1e-5, atol=1e-7)


def test_completeness_error_shrinks_with_steps_and_is_reported(setting):
    sub, maps, targets, patch_ids = setting
    errors = [
        IntegratedGradients(n_steps=n).attribute(sub, lambda ids: maps[ids], targets, patch_ids).completeness_error
        for n in (2, 64)
    ]
    assert errors[1] < errors[0]
    assert errors[1] < 1e-2


def test_completeness_delta_matches_its_definition(setting):
    sub, maps, targets, patch_ids = setting
    result = IntegratedGradients(n_steps=8).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    x = maps[patch_ids[0, 0] : patch_ids[0, 0] + 1]
    with torch.no_grad():
        diff = (neuron_activations(sub(x)) - neuron_activations(sub(x * 0)))[0, targets[0]].item()
    assert result.output_diff[0, 0] == pytest.approx(diff, rel=1e-5)
    spatial = maps.shape[2] * maps.shape[3]
    assert result.delta[0, 0] == pytest.approx(result.scores[0, 0].sum() * spatial - diff, rel=1e-3, abs=1e-5)


def test_adaptive_steps_reach_the_tolerance(setting):
    sub, maps, targets, patch_ids = setting
    reference = IntegratedGradients(n_steps=50).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    adaptive = IntegratedGradients(n_steps="auto", tolerance=reference.completeness_error)
    result = adaptive.attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    assert result.completeness_error <= reference.completeness_error
    assert result.n_steps in (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def test_bf16_keeps_the_top_neurons_up_to_near_ties(setting):
    """bf16 differs from fp32 by its rounding only, so a top set changes only where fp32's own importances lie
    within that rounding of the cut (docs/performance.md: 89-90 of 94 sets identical at the paper's settings)."""
    sub, maps, targets, patch_ids = setting
    fp32 = IntegratedGradients(n_steps=16).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    bf16 = IntegratedGradients(n_steps=16, precision="bf16").attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    exact, rounded = np.abs(fp32.scores).mean(1), np.abs(bf16.scores).mean(1)  # (target, lower neuron) importance
    error = np.abs(rounded - exact).max(axis=1)
    assert (error > 0).all()  # bf16 did run in bf16
    assert (error <= torch.finfo(torch.bfloat16).eps * exact.max(axis=1)).all()  # within one bf16 step of the top
    tau = 4
    for t in range(len(targets)):
        order = np.argsort(-exact[t])
        cut = (exact[t][order[tau - 1]] + exact[t][order[tau]]) / 2
        changed = set(order[:tau]) ^ set(np.argsort(-rounded[t])[:tau])
        assert all(abs(exact[t][n] - cut) <= 2 * error[t] for n in changed), (t, sorted(changed))


def test_quadrature_weights_integrate_linear_functions_exactly():
    for method in ("gausslegendre", "riemann_middle", "riemann_trapezoid"):
        alphas, weights = quadrature(method, 7)
        assert weights.sum() == pytest.approx(1.0)
        assert (weights * alphas).sum() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, word",
    [({"method": "simpson"}, "method"), ({"n_steps": 0}, "n_steps"), ({"precision": "int8"}, "precision"),
     ({"n_steps": "auto"}, "tolerance"), ({"internal_batch_size": 0}, "internal_batch_size"),
     ({"precision": "fp16"}, "CUDA")],
)
def test_bad_parameters_are_one_line_errors(kwargs, word):
    with pytest.raises(ConfigError, match=word) as info:
        IntegratedGradients(**kwargs)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def prefix_setting(digits_model, digits_preset, digits_class3):
    """IG from conv2 to conv3 whose lower maps come from the model's prefix, as in a circuit."""
    patches = make_patches(digits_class3.images[:3])
    sub = bridge(digits_model, "conv2", "conv3", digits_preset.normalize(digits_class3.images[:2]))  # IG freezes it
    acts = compute_activations(digits_model, patches, ["conv3", "conv2"], digits_preset.normalize, 32)
    targets = np.array([1, 5, 9, 30, 31])
    top = acts.top_patches("conv3", targets, 12)  # overlapping concepts: patches shared by several targets

    def inputs(ids):
        return feature_maps(digits_model, patches, "conv2", ids, digits_preset.normalize, 32)

    return sub, inputs, targets, top, (digits_model, patches, digits_preset.normalize)


def test_memory_budget_bounds_live_tensors_and_leaves_results_unchanged(prefix_setting):
    sub, inputs, targets, top, _ = prefix_setting
    reference = IntegratedGradients(n_steps=10).attribute(sub, inputs, targets, top)
    one_pass = IntegratedGradients(n_steps=10, internal_batch_size=10 * top.size)  # everything in one chunk
    single = one_pass.attribute(sub, inputs, targets, top)
    np.testing.assert_allclose(single.scores, reference.scores, rtol=1e-5, atol=1e-7)
    equal_chunks = IntegratedGradients(n_steps=10, tuning=Tuning(partition=False)).attribute(sub, inputs, targets, top)
    np.testing.assert_allclose(equal_chunks.scores, reference.scores, rtol=1e-5, atol=1e-7)
    # A budget so small that passes, map blocks and prefix calls split into many: tensors stay within it.
    first, per_patch = peak_live_bytes(lambda: inputs(top[0, :1]))
    budget = 40 * (per_patch + first[0].numel() * 4) / 2**20
    small = IntegratedGradients(n_steps=10, memory_budget_mb=budget)
    got, peak = peak_live_bytes(lambda: small.attribute(sub, inputs, targets, top))
    np.testing.assert_allclose(got.scores, reference.scores, rtol=1e-5, atol=1e-7)
    assert peak <= budget * 2**20, (peak, budget * 2**20)
    _, unbounded = peak_live_bytes(lambda: IntegratedGradients(n_steps=10).attribute(sub, inputs, targets, top))
    assert unbounded > budget * 2**20  # the small budget did bind


def test_activation_batches_fit_the_memory_budget(prefix_setting):
    _sub, _inputs, _targets, _top, (model, patches, normalize) = prefix_setting
    layers = ["conv3", "conv2", "conv1"]
    reference = compute_activations(model, patches, layers, normalize, 32, batch_size=len(patches))
    _, whole = peak_live_bytes(lambda: compute_activations(model, patches, layers, normalize, 32, len(patches)))
    budget = whole / 8 / 2**20
    got, peak = peak_live_bytes(
        lambda: compute_activations(model, patches, layers, normalize, 32, len(patches), memory_budget_mb=budget))
    for layer in layers:
        np.testing.assert_allclose(got.values[layer], reference.values[layer], rtol=1e-5, atol=1e-6)
    assert peak <= budget * 2**20 + sum(v.nbytes for v in got.values.values())  # the table is kept, as numpy


def test_partition_covers_patches_in_order_and_pads_less_than_equal_chunks():
    rng = np.random.default_rng(0)
    counts = np.sort(rng.zipf(1.6, 300).clip(max=60))[::-1]
    per_chunk, n_steps, rows = 12, 8, 96

    def rows_run(chunks):
        return sum((1 + counts[a]) * (b - a) * n_steps for a, b in chunks)

    chunks = attribution._partition(counts, per_chunk, n_steps, rows, overhead=4)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(counts)
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(chunks, chunks[1:], strict=False))
    assert all(0 < b - a <= per_chunk for a, b in chunks)
    equal = [(i, min(i + per_chunk, len(counts))) for i in range(0, len(counts), per_chunk)]
    assert rows_run(chunks) < rows_run(equal)


def test_engine_on_a_folded_real_weights_bridge_equals_captum_on_the_model():
    """EfficientNet-Lite0's ImageNet weights: the bridge's batch norms are folded, Captum runs the block unfolded."""
    import dataclasses
    from pathlib import Path

    from neurflow_graph.image_sources import class_images
    from neurflow_graph.recipes import load_recipe, prepare_model

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "ingest" / "efficientnet-lite0.toml")
    recipe = recipe.with_overrides(device="cpu")
    recipe = dataclasses.replace(recipe, images=dataclasses.replace(recipe.images, augment=1))
    prep = prepare_model(recipe)
    kept, _ = class_images(prep, prep.class_names.index(recipe.classes[0]), "cpu")
    model, norm = prep.model.eval(), prep.preset.normalize
    patches = make_patches(kept.images.float()[:1], (1.0, 0.5))
    maps = feature_maps(model, patches, "_blocks.13", np.arange(len(patches)), norm, prep.preset.input_size)
    example = norm(kept.images[:1].float())
    folded, plain = bridge(model, "_blocks.13", "_blocks.14", example), bridge(model, "_blocks.13", "_blocks.14",
                                                                               example, fold=False)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules()) == 0
    targets = np.argsort(-neuron_activations(plain(maps)).max(0).values.detach().numpy())[:2]
    patch_ids = np.stack([np.arange(4), np.arange(1, 5)])
    expected = _captum(plain, maps, targets, patch_ids, 8, "gausslegendre")
    got = IntegratedGradients(n_steps=8).attribute(folded, lambda ids: maps[ids], targets, patch_ids)
    assert np.abs(got.scores - expected).max() <= 1e-4 * np.abs(expected).max()
