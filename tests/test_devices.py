"""Device handling without a GPU: one resolved, indexed device; pinning only host tensors; TF32 flags restored;
out-of-memory retries; the batched backward equal to the per-slot loop; runs on ``cpu:0`` equal to runs on ``cpu``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurflow_graph.engine import attribution
from neurflow_graph.engine.activations import feature_maps
from neurflow_graph.engine.attribution import IntegratedGradients
from neurflow_graph.engine.devices import (
    CPU_BUDGET_MB,
    default_budget_mb,
    float32_matmuls,
    is_out_of_memory,
    module_device,
    needs_pinning,
    on_device,
    resolve_device,
    same_device,
)
from neurflow_graph.engine.layers import bridge
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.errors import ConfigError


@pytest.fixture
def tf32_flags():
    """Sets both TF32 flags on for the test and restores the process's values afterwards, whatever happens."""
    with float32_matmuls(True):
        yield


@pytest.fixture(scope="module")
def setting(digits_model, digits_preset, digits_class3):
    patches = make_patches(digits_class3.images[:3])
    sub = bridge(digits_model, "conv2", "conv3", digits_preset.normalize(digits_class3.images[:2]))  # IG freezes it
    maps = feature_maps(digits_model, patches, "conv2", np.arange(len(patches)), digits_preset.normalize, 32)
    rng = np.random.default_rng(0)
    targets = np.arange(0, 64, 5)
    # Few distinct patches shared by many targets: passes with many slots, as at the paper's settings.
    patch_ids = np.stack([rng.choice(12, 8, replace=False) for _ in targets])
    return sub, maps, targets, patch_ids


def test_devices_resolve_once_to_one_comparable_device():
    cpu0 = resolve_device("cpu:0")
    assert cpu0 == torch.device("cpu", 0) and cpu0 != torch.zeros(1).device  # why ``==`` is not enough
    assert same_device(cpu0, torch.zeros(1).device) and same_device("cpu", cpu0)
    assert resolve_device("auto") == (torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
                                      else torch.device("cpu"))
    assert same_device(torch.device("cuda", 0), "cuda:0") and not same_device("cuda:1", "cuda:0")
    assert not same_device("cpu", "cuda:0") and not same_device("meta", "cpu")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
@pytest.mark.parametrize("make", [resolve_device, lambda device: IntegratedGradients(device=device)])
def test_a_cuda_device_without_cuda_is_a_one_line_error_naming_the_fix(device, make):
    with pytest.raises(ConfigError) as caught:
        make(device)
    message = str(caught.value)
    assert "\n" not in message and "--device cpu" in message
    if torch.version.cuda is None:
        assert "CPU-only build" in message


def test_only_host_tensors_are_pinned(setting):
    cuda0 = torch.device("cuda", 0)
    assert needs_pinning(torch.device("cpu"), cuda0) and needs_pinning(torch.device("cpu", 0), cuda0)
    for source in (cuda0, torch.device("cuda", 1), torch.device("meta")):
        assert not needs_pinning(source, cuda0)  # a map already on a GPU: no pin_memory(), which torch refuses
    assert not needs_pinning(torch.device("cpu"), torch.device("cpu", 0))
    ig = IntegratedGradients(device="cpu:0")
    x = torch.ones(2, 3, dtype=torch.float64)
    moved = ig._to_device(x)
    assert moved.dtype == torch.float32 and same_device(moved.device, ig.device) and not moved.is_pinned()


def test_a_module_is_copied_to_another_device_never_moved(digits_model):
    assert module_device(digits_model) == torch.device("cpu")
    assert on_device(digits_model, torch.device("cpu", 0)) is digits_model  # already there: no copy
    copy = on_device(digits_model, torch.device("meta"))
    assert module_device(copy) == torch.device("meta") and module_device(digits_model) == torch.device("cpu")


def test_fp32_is_strict_while_the_engine_runs_and_the_flags_return(setting, tf32_flags):
    sub, maps, targets, patch_ids = setting
    seen = []

    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sub = sub

        def forward(self, x):
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return self.sub(x)

    IntegratedGradients(n_steps=4, device="cpu:0").attribute(Recording(), lambda ids: maps[ids], targets[:2],
                                                             patch_ids[:2, :2])
    assert seen and set(seen) == {(False, False)}
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32  # restored
    with float32_matmuls(tf32=False):
        assert not torch.backends.cudnn.allow_tf32
        with float32_matmuls(tf32=True):
            assert torch.backends.cudnn.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.allow_tf32


def test_tf32_is_a_cuda_precision():
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        IntegratedGradients(precision="tf32", device="cpu")


def test_the_default_budget_comes_from_the_device():
    assert default_budget_mb(torch.device("cpu", 0)) == CPU_BUDGET_MB
    assert IntegratedGradients(device="cpu:0").memory_budget_mb == CPU_BUDGET_MB
    assert IntegratedGradients(memory_budget_mb=300).memory_budget_mb == 300


class _RunsOutOfMemory(torch.nn.Module):
    """The bridge, raising the error a GPU raises whenever a pass holds more than ``limit`` rows (injected OOM)."""

    def __init__(self, sub, limit: int):
        super().__init__()
        self.sub, self.limit, self.largest = sub, limit, 0

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0]} rows")
        self.largest = max(self.largest, x.shape[0])
        return self.sub(x)


def test_out_of_memory_halves_the_rows_retries_and_reports_once(setting):
    sub, maps, targets, patch_ids = setting
    rows = 64
    reference = IntegratedGradients(n_steps=8, internal_batch_size=rows // 4).attribute(
        sub, lambda ids: maps[ids], targets, patch_ids)
    forward = _RunsOutOfMemory(sub, limit=rows // 4)
    ig = IntegratedGradients(n_steps=8, internal_batch_size=rows)
    with pytest.warns(RuntimeWarning, match="out of memory") as warned:
        got = ig.attribute(forward, lambda ids: maps[ids], targets, patch_ids)
        again = ig.attribute(forward, lambda ids: maps[ids], targets, patch_ids)  # starts at the halved size
    assert len([w for w in warned if "out of memory" in str(w.message)]) == 1
    assert ig.rows_per_pass(maps[:1]) == rows // 4 and forward.largest <= rows // 4
    np.testing.assert_allclose(got.scores, reference.scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(again.scores, got.scores)


def test_out_of_memory_after_every_retry_is_a_one_line_error(setting):
    sub, maps, targets, patch_ids = setting
    # Passes never get below 64 / 2**OOM_RETRIES rows, so a limit under that fails every retry.
    forward = _RunsOutOfMemory(sub, limit=64 // 2 ** (attribution.OOM_RETRIES + 1))
    with pytest.warns(RuntimeWarning), pytest.raises(ConfigError) as caught:
        IntegratedGradients(n_steps=8, internal_batch_size=64).attribute(forward, lambda ids: maps[ids], targets,
                                                                         patch_ids)
    message = str(caught.value)
    assert "\n" not in message and "--memory-budget-mb" in message and "out of memory" in message
    assert is_out_of_memory(torch.OutOfMemoryError("x")) and is_out_of_memory(RuntimeError("CUDA out of memory."))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def _attribute_counted(ig: IntegratedGradients, setting, monkeypatch) -> tuple:
    """``ig``'s attribution of the setting, and how many ``torch.autograd.grad`` calls it made (the real function
    does the work)."""
    sub, maps, targets, patch_ids = setting
    original, calls = torch.autograd.grad, [0]

    def grad(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(torch.autograd, "grad", grad)
        result = ig.attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    return result, calls[0]


@pytest.mark.parametrize("rows", [None, 24])
def test_batched_backward_equals_the_per_slot_loop(setting, rows, monkeypatch):
    results, calls = {}, {}
    for batched in (False, True):
        ig = IntegratedGradients(n_steps=8, internal_batch_size=rows,
                                 tuning=attribution.Tuning(batched_backward=batched))
        results[batched], calls[batched] = _attribute_counted(ig, setting, monkeypatch)
    loop, batched = results[False], results[True]
    scale = np.abs(loop.scores).max()
    assert np.abs(batched.scores - loop.scores).max() <= 1e-6 * scale
    np.testing.assert_allclose(batched.delta, loop.delta, rtol=1e-6, atol=1e-6 * np.abs(loop.output_diff).max())
    assert calls[True] < calls[False]  # the slots of a pass share backward calls


def test_batched_slots_take_the_budget_beyond_the_row_cap(setting, monkeypatch):
    """A pass holds at most MAX_ROWS_PER_PASS rows; what the budget holds beyond them goes to the batched backward's
    slots, so a transition that fits one capped pass takes one backward call however many slots it has."""
    patch_ids = setting[3]
    rows = len(np.unique(patch_ids)) * 8  # every patch at 8 steps: one pass
    monkeypatch.setattr(attribution, "MAX_ROWS_PER_PASS", rows)
    calls, results = {}, {}
    for batched in (False, True):
        # A call costing more than any padding: chunks chosen for the fewest calls, as on a GPU.
        tuning = attribution.Tuning(batched_backward=batched, call_overhead_rows=10**6)
        results[batched], calls[batched] = _attribute_counted(IntegratedGradients(n_steps=8, tuning=tuning), setting,
                                                              monkeypatch)
    slots = np.bincount(np.unique(patch_ids, return_inverse=True)[1].ravel()).max()
    assert calls == {False: slots, True: 1}
    assert np.abs(results[True].scores - results[False].scores).max() <= 1e-6 * np.abs(results[False].scores).max()


def test_batched_backward_is_the_default():
    assert IntegratedGradients(device="cpu:0").tuning.batched_backward
    if torch.cuda.is_available():
        assert IntegratedGradients(device="cuda").tuning.batched_backward


def test_a_run_on_cpu0_equals_the_run_on_cpu(digits_spec, digits_class3, digits_bundle, small_params):
    from neurflow_graph.engine.pipeline import NeurFlow

    indexed = NeurFlow(progress=False, **{**small_params, "device": "cpu:0"}).run(
        digits_spec, 3, digits_class3.images, digits_class3.sha256, "3")
    assert indexed.meta.run_id == digits_bundle.meta.run_id
    assert indexed.meta.params.device == "cpu:0" and indexed.meta.params.precision == "fp32"
    assert indexed.meta.params.memory_budget_mb == CPU_BUDGET_MB
    for a, b in zip(indexed.circuit.transitions, digits_bundle.circuit.transitions, strict=True):
        np.testing.assert_array_equal(a.targets, b.targets)
        np.testing.assert_array_equal(a.core, b.core)
        np.testing.assert_allclose(a.edge_score, b.edge_score, rtol=1e-5, atol=1e-7)
    assert [g.semantic_groups for g in indexed.groups.groups] == [
        g.semantic_groups for g in digits_bundle.groups.groups]


def test_a_run_leaves_the_callers_model_in_its_mode_and_grad_flags(digits_spec, digits_class3, digits_bundle,
                                                                    small_params):
    """The bridges share the caller's modules: a run evaluates them frozen, then gives back the mode and flags."""
    import copy
    import dataclasses

    from neurflow_graph.engine.pipeline import NeurFlow

    model = copy.deepcopy(digits_spec.model).train().requires_grad_(True)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    bundle = NeurFlow(progress=False, **small_params).run(
        dataclasses.replace(digits_spec, model=model), 3, digits_class3.images, digits_class3.sha256, "3")
    assert all(m.training for m in model.modules()) and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())
    assert bundle.meta.run_id == digits_bundle.meta.run_id  # evaluated in eval mode, as the shared model was
    for a, b in zip(bundle.circuit.transitions, digits_bundle.circuit.transitions, strict=True):
        np.testing.assert_array_equal(a.core, b.core)
    sub = bridge(model, "conv2", "conv3", digits_spec.normalize(digits_class3.images[:2]))
    maps = feature_maps(model, make_patches(digits_class3.images[:2]), "conv2", np.arange(4), digits_spec.normalize, 4)
    IntegratedGradients(n_steps=4).attribute(sub, lambda ids: maps[ids], [0, 1], np.array([[0, 1], [2, 3]]))
    assert all(m.training for m in model.modules()) and all(p.requires_grad for p in model.parameters())


def test_every_evaluate_experiment_runs_on_cpu0_as_on_cpu(digits_bundle, digits_spec, tmp_path):
    from neurflow_graph.evaluation import subject_from_bundle
    from neurflow_graph.evaluation.experiments import KINDS, run_experiment

    params = {"optimality": {"targets": 2, "samples": 5}, "fidelity": {"samples": 2},
              "weights": {"targets": 2, "samples": 3, "max_size": 6}}
    for kind in KINDS:
        tables = {}
        for device in ("cpu", "cpu:0"):
            subject = subject_from_bundle(digits_bundle, digits_spec, device=device)
            assert same_device(subject.device, "cpu")
            tables[device] = run_experiment(kind, [subject], tmp_path / device, params[kind]).table.to_pandas()
        for column in tables["cpu"].columns:
            a, b = tables["cpu"][column].to_numpy(), tables["cpu:0"][column].to_numpy()
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{kind}.{column}")
            else:
                assert list(map(str, a)) == list(map(str, b)), f"{kind}.{column}"


def test_debug_on_cpu0_equals_debug_on_cpu(digits_model, digits_preset, digits_bundle_dir, digits_class3):
    from neurflow_graph.debugging import debug_images, layer_groups_from_bundle

    groups = layer_groups_from_bundle(digits_bundle_dir, "conv3")
    images = digits_class3.images[:8]
    kwargs = dict(normalize=digits_preset.normalize, seeds=2, top=3, batch_size=5)
    on_cpu = debug_images(digits_model, images, groups, 3, device="cpu", **kwargs)
    on_cpu0 = debug_images(digits_model, images, groups, 3, device="cpu:0", **kwargs)
    np.testing.assert_allclose(on_cpu0.logit, on_cpu.logit, rtol=1e-6)
    for g, h in zip(on_cpu.groups, on_cpu0.groups, strict=True):
        assert g.random_sets == h.random_sets and list(g.top_images) == list(h.top_images)
        np.testing.assert_allclose(h.logit_drop, g.logit_drop, rtol=1e-5, atol=1e-6)


def test_bf16_weights_cast_once_give_autocast_results(setting):
    """Casting the bridge's weights once changes no score: autocast rounds them the same way on every call."""
    sub, maps, targets, patch_ids = setting
    fp32 = IntegratedGradients(n_steps=8).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    once = IntegratedGradients(n_steps=8, precision="bf16").attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    every_call = IntegratedGradients(n_steps=8, precision="bf16", tuning=attribution.Tuning(cast_weights_once=False)
                                     ).attribute(sub, lambda ids: maps[ids], targets, patch_ids)
    np.testing.assert_allclose(once.scores, every_call.scores, rtol=1e-5, atol=1e-6 * np.abs(fp32.scores).max())

    def top(result, tau=4):
        return [frozenset(np.argsort(-np.abs(s).mean(0), kind="stable")[:tau].tolist()) for s in result.scores]

    agree = [sum(a == b for a, b in zip(top(r), top(fp32), strict=True)) for r in (once, every_call)]
    assert agree[0] == agree[1]  # the top-tau agreement with fp32 stays where autocast had it
    cast = attribution.cast_weights(sub, torch.bfloat16)
    convs = [m for m in cast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert all(p.dtype == torch.float32 for p in sub.parameters())  # the bridge itself is not changed
