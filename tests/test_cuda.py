"""The engine on a CUDA GPU against the CPU fp32 result (skipped without a GPU; run with ``pytest -m cuda``)."""

import numpy as np
import pytest
import torch

from neurflow_graph.engine.activations import feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients, Tuning, default_precision
from neurflow_graph.engine.layers import bridge
from neurflow_graph.engine.patches import make_patches

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(autouse=True)
def _restore_tf32_flags():
    """No test here may leave the process's TF32 flags changed for the tests that follow."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def setting(digits_model, digits_preset, digits_class3):
    patches = make_patches(digits_class3.images[:4])
    sub = bridge(digits_model, "conv2", "conv3", digits_preset.normalize(digits_class3.images[:2]))  # IG freezes it
    maps = feature_maps(digits_model, patches, "conv2", np.arange(len(patches)), digits_preset.normalize, 32)
    rng = np.random.default_rng(0)
    targets = np.arange(0, sub(maps[:1]).shape[1], 3)
    patch_ids = np.stack([rng.choice(len(patches), 12, replace=False) for _ in targets])
    cpu = IntegratedGradients(n_steps=16).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    return sub, maps, targets, patch_ids, cpu


def _top(result, tau):
    return [frozenset(np.argsort(-np.abs(s).mean(0), kind="stable")[:tau].tolist()) for s in result.scores]


@pytest.mark.parametrize("on_gpu", [False, True])
def test_cuda_fp32_equals_cpu_fp32(setting, on_gpu):
    """fp32 is strict even with TF32 allowed (cuDNN's default); maps already on the GPU are not pinned."""
    sub, maps, targets, patch_ids, cpu = setting
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    source = maps.cuda() if on_gpu else maps
    gpu = IntegratedGradients(n_steps=16, device="cuda").attribute(sub, lambda ids: source[ids], targets, patch_ids)
    assert np.abs(gpu.scores - cpu.scores).max() <= 1e-4 * np.abs(cpu.scores).max()
    np.testing.assert_allclose(gpu.output_diff, cpu.output_diff, rtol=1e-4, atol=1e-5 * np.abs(cpu.output_diff).max())
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # the caller's flags return
    assert all(p.device.type == "cpu" for p in sub.parameters())  # the shared bridge was copied, not moved


def test_batched_backward_equals_the_loop_on_the_gpu(setting):
    sub, maps, targets, patch_ids, _cpu = setting
    results = []
    for batched in (False, True):
        ig = IntegratedGradients(n_steps=16, device="cuda", tuning=Tuning(batched_backward=batched))
        results.append(ig.attribute(sub, lambda ids: maps[ids], targets, patch_ids).scores)
    assert np.abs(results[1] - results[0]).max() <= 1e-6 * np.abs(results[0]).max()


@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16"])
def test_half_precisions_keep_the_top_neurons(setting, precision):
    sub, maps, targets, patch_ids, cpu = setting
    gpu = IntegratedGradients(n_steps=16, precision=precision, device="cuda").attribute(
        sub, lambda ids: maps[ids], targets, patch_ids)
    same = sum(a == b for a, b in zip(_top(gpu, 4), _top(cpu, 4), strict=True))
    assert same >= 0.9 * len(targets)


def test_bf16_is_the_cuda_default_and_devices_resolve_indexed():
    from neurflow_graph.engine.devices import resolve_device, same_device

    assert default_precision("cuda") == "bf16"
    assert resolve_device("cuda").index == torch.cuda.current_device() == resolve_device("auto").index
    assert same_device(resolve_device("cuda"), torch.zeros(1, device="cuda").device)


def test_memory_budget_is_respected_on_the_device():
    from neurflow_graph.models.presets import get_preset

    torch.manual_seed(0)
    model = get_preset("resnet50").build().eval().cuda()  # random weights: memory does not depend on them
    example = torch.randn(2, 3, 224, 224, device="cuda")
    sub = bridge(model, "layer3.4", "layer3.5", example)
    for p in sub.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        maps = torch.relu(torch.randn(40, 1024, 14, 14, device="cuda"))
    targets = np.arange(24)
    patch_ids = np.stack([np.random.default_rng(t).choice(40, 20, replace=False) for t in targets])
    budget_mb = 256
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    IntegratedGradients(n_steps=50, memory_budget_mb=budget_mb, device="cuda").attribute(
        sub, lambda ids: maps[ids], targets, patch_ids)
    torch.cuda.synchronize()
    results_mb = patch_ids.size * (1024 * 4 + 16) / 2**20  # the per-transition score table held on the device
    assert (torch.cuda.max_memory_allocated() - before) / 2**20 <= budget_mb + results_mb
