"""The caller's model is never moved: ``evaluate``, ``debug`` and faithfulness run a copy on another device
(``devices.on_device``) and leave the user's model where it was, with the same weights."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import neurflow_graph
from neurflow_graph.engine.params import FaithfulnessSettings

PACKAGE = Path(neurflow_graph.__file__).parent
ALLOWED = {PACKAGE / "engine" / "devices.py"}  # on_device's own copy-then-move
# Parts of a name ("_"-separated) that say it holds a module: model, self._model, prepared.model, bridge, forward,
# (forward or model), channels_first_bridge(...), ...
MODULE_WORDS = {"model", "models", "module", "modules", "bridge", "bridges", "forward", "run", "net", "network",
                "sub", "top", "passes", "backbone", "layer"}
# Methods that return the module they are called on: ``model.eval().to(device)`` moves ``model``.
SAME_MODULE = {"eval", "train", "float", "double", "half", "requires_grad_", "to", "cpu", "cuda"}
DEVICE_ARG = re.compile(r"device|cuda|cpu")


def _parts(name: str) -> set[str]:
    return {part for part in name.lower().strip("_").split("_") if part}


def _holds_module(node: ast.expr) -> bool:
    """Whether an expression's name says it is a module (a variable, attribute or factory call), not a tensor."""
    if isinstance(node, ast.Name):
        return bool(_parts(node.id) & MODULE_WORDS)
    if isinstance(node, ast.Attribute):
        return bool(_parts(node.attr) & MODULE_WORDS)
    if isinstance(node, ast.BoolOp):
        return any(_holds_module(value) for value in node.values)
    if isinstance(node, ast.IfExp):
        return _holds_module(node.body) or _holds_module(node.orelse)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in SAME_MODULE:
            return _holds_module(node.func.value)
        # A factory (``channels_first_bridge(...)``, ``build_model(...)``) returns a module; a single-word call
        # (``model(x)``, ``run(x)``) is a forward pass and returns a tensor.
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        parts = [part for part in name.lower().strip("_").split("_") if part]
        return len(parts) > 1 and parts[-1] in MODULE_WORDS
    return False


def moves_in_place(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: code`` of every call that moves a module to a device in place (``.to(device)``, ``.cuda()``,
    ``.cpu()`` on a module-named expression)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method == "to":
            args = [*node.args, *(kw.value for kw in node.keywords if kw.arg in (None, "device"))]
            if not any(DEVICE_ARG.search(ast.unparse(arg)) for arg in args):
                continue  # a dtype or memory-format cast
        elif method not in ("cuda", "cpu"):
            continue
        if _holds_module(node.func.value):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("code", [
    "model = self.spec.model.to(self.device).eval()",
    "model = subject.spec.model.to(subject.device).eval()",
    "self._model = model.to(self.device).eval()",
    "self.bridge = channels_first_bridge(sub, lower, upper).to(self.device).eval()",
    "model = model.to(device).eval()",
    "run = (forward or model).to(device).eval()",
    "model = prepared.model.to(device)",
    "sub.to(device=device)",
    "model.eval().to('cuda:0')",
    "model.cuda()",
])
def test_the_check_finds_a_module_moved_in_place(code):
    assert moves_in_place(code), code


@pytest.mark.parametrize("code", [
    "x = batch.to(device)",
    "example = spec.normalize(images[:2]).to(self.device)",
    "logits = model(batch.to(device)).float().cpu()",
    "layer.to(dtype)",
    "layer.to(memory_format=torch.channels_last)",
    "return copy.deepcopy(module)",
    "model = on_device(spec.model, device).eval()",
    "parts.append(model_inputs(ids).to(x.device))",
])
def test_the_check_leaves_tensors_and_casts_alone(code):
    assert not moves_in_place(code), code


def test_no_module_is_moved_in_place_outside_on_device():
    """A model the caller passes in may be shared (a bridge shares the user's modules): run a copy on another
    device with ``devices.on_device`` instead of ``.to(device)``."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path not in ALLOWED
             for hit in moves_in_place(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert not found, "modules moved in place (use devices.on_device):\n" + "\n".join(found)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _run_everything(model, preset, bundle, bundle_dir, images, device, out_dir):
    """``evaluate``'s experiments, ``debug`` and the faithfulness measurement on ``device`` with the user's
    ``model``; returns what they computed, for comparison between devices."""
    from neurflow_graph.debugging import debug_images, layer_groups_from_bundle
    from neurflow_graph.debugging.faithfulness import group_faithfulness
    from neurflow_graph.engine.pipeline import ModelSpec
    from neurflow_graph.evaluation import subject_from_bundle
    from neurflow_graph.evaluation.experiments import KINDS, run_experiment
    from neurflow_graph.evaluation.faithfulness import measure_faithfulness

    spec = ModelSpec("digits", model, preset.layers, preset.input_size, preset.normalize,
                     provenance={"preset": "digits", "weights": "DIGITS_V1"})
    params = {"optimality": {"targets": 2, "samples": 3}, "fidelity": {"samples": 2},
              "weights": {"targets": 2, "samples": 3, "max_size": 6}}
    tables = {}
    for kind in KINDS:
        subject = subject_from_bundle(bundle, spec, device=device)
        tables[kind] = run_experiment(kind, [subject], out_dir / kind, params[kind]).table.to_pandas()
    subject = subject_from_bundle(bundle, spec, device=device)
    settings = FaithfulnessSettings(level="groups", sets=10, seed=1)
    faithfulness = measure_faithfulness(subject, settings), group_faithfulness(subject, bundle.groups, settings)
    debugged = debug_images(model, images, layer_groups_from_bundle(bundle_dir, "conv3"), 3,
                            normalize=preset.normalize, seeds=2, top=3, batch_size=5, device=device)
    return tables, faithfulness, debugged


def _assert_untouched(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    """Every parameter and buffer of ``model`` is on the CPU and bit-identical to ``before``."""
    after = model.state_dict()
    assert after.keys() == before.keys()
    for name, tensor in after.items():
        assert tensor.device.type == "cpu", f"{name} was moved to {tensor.device}"
        assert tensor.dtype == before[name].dtype and torch.equal(tensor, before[name]), f"{name} changed"
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.fixture
def user_model(digits_model):
    """The user's model: a copy of the session's trained digits CNN, so a failure here leaves the shared one."""
    return copy.deepcopy(digits_model).eval()


def test_evaluate_debug_and_faithfulness_leave_the_users_model_as_it_was(
        user_model, digits_preset, digits_bundle, digits_bundle_dir, digits_class3, tmp_path):
    before = _state(user_model)
    images = digits_class3.images[:8]
    _run_everything(user_model, digits_preset, digits_bundle, digits_bundle_dir, images, "cpu:0", tmp_path)
    _assert_untouched(user_model, before)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_users_cpu_model_stays_on_the_cpu_and_results_match(
        user_model, digits_preset, digits_bundle, digits_bundle_dir, digits_class3, tmp_path):
    from neurflow_graph.engine.devices import float32_matmuls

    before = _state(user_model)
    images = digits_class3.images[:8]
    with float32_matmuls(False):  # strict fp32 on the GPU, so its figures can be held to the CPU's
        on_gpu = _run_everything(user_model, digits_preset, digits_bundle, digits_bundle_dir, images, "cuda",
                                 tmp_path / "cuda")
    _assert_untouched(user_model, before)
    on_cpu = _run_everything(user_model, digits_preset, digits_bundle, digits_bundle_dir, images, "cpu",
                             tmp_path / "cpu")
    for kind, table in on_cpu[0].items():
        assert list(table.columns) == list(on_gpu[0][kind].columns) and len(table) == len(on_gpu[0][kind]), kind
    np.testing.assert_allclose(on_gpu[2].logit, on_cpu[2].logit, rtol=1e-4, atol=1e-4)
    for gpu_rows, cpu_rows in ((on_gpu[1][0].layers, on_cpu[1][0].layers), (on_gpu[1][1], on_cpu[1][1])):
        assert [row["layer"] for row in gpu_rows] == [row["layer"] for row in cpu_rows]
        np.testing.assert_allclose([row["logit_drop"] for row in gpu_rows], [row["logit_drop"] for row in cpu_rows],
                                   rtol=1e-3, atol=1e-4)


def test_a_subject_on_another_device_makes_one_copy_and_leaves_the_users_model(user_model, digits_preset,
                                                                                digits_bundle):
    """``meta`` stands in for a GPU: the copy is made once and shared; the user's model stays on the CPU."""
    from neurflow_graph.engine.pipeline import ModelSpec
    from neurflow_graph.evaluation import subject_from_bundle

    spec = ModelSpec("digits", user_model, digits_preset.layers, digits_preset.input_size, digits_preset.normalize)
    on_cpu = subject_from_bundle(digits_bundle, spec, device="cpu:0")
    assert on_cpu.model is user_model
    elsewhere = subject_from_bundle(digits_bundle, spec, device="meta")
    copied = elsewhere.model
    assert copied is not user_model and elsewhere.model is copied
    assert all(p.device.type == "meta" for p in copied.parameters())
    assert all(p.device.type == "cpu" for p in user_model.parameters())


def test_masking_through_a_slice_needs_the_model_on_the_device(user_model, digits_preset, digits_class3):
    """The slice shares the model's modules and the masks hook the model: a copy of one without the other would
    mask nothing, so it is refused."""
    from neurflow_graph.evaluation.masking import keep_mask, masked_outputs
    from neurflow_graph.evaluation.slicing import from_layer

    images = digits_preset.normalize(digits_class3.images[:4])
    forward, start, inputs = from_layer(user_model, images, "conv3")
    assert forward is not None
    keep = {"conv3": keep_mask(inputs.shape[1], [0, 1], "mask")[None]}
    masked_outputs(user_model, inputs, keep, "cpu:0", forward=forward, start=start)
    with pytest.raises(ValueError, match="already on the device"):
        masked_outputs(user_model, inputs, keep, "meta", forward=forward, start=start)
    assert all(p.device.type == "cpu" for p in user_model.parameters())
