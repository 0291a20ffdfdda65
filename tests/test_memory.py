"""Inside ``keep_freed_memory`` glibc serves large tensors from its heap, where freed blocks are reused, instead of
mapping (and page-faulting) a fresh block for each one over 32 MB."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurflow_graph.engine import memory
from neurflow_graph.engine.memory import keep_freed_memory
from neurflow_graph.evaluation import subject_from_bundle
from neurflow_graph.evaluation.experiments import run_experiment

pytestmark = pytest.mark.skipif(memory._glibc() is None, reason="glibc's malloc settings exist only on glibc Linux")


def _in_heap(tensor: torch.Tensor) -> bool:
    """Whether the tensor's memory lies in glibc's main heap (``[heap]`` in /proc/self/maps), not a mapping apart."""
    address = tensor.untyped_storage().data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith("[heap]"):
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if start <= address < end:
                return True
    return False


def _probe(inside: bool) -> bool:
    """Whether a new untouched tensor lands in the heap. Both sizes are far over glibc's 32 MB threshold; a probe
    made outside a block (8 GB) is larger than the holes that probes inside one (1 GB each) leave in the heap."""
    return _in_heap(torch.empty((1 if inside else 8) * 2**30, dtype=torch.uint8))


def test_large_tensors_come_from_the_heap_inside_and_from_own_mappings_outside():
    with keep_freed_memory():
        inside = _probe(inside=True)
    assert inside
    assert not _probe(inside=False)  # on exit glibc's settings are back


def test_blocks_nest_and_other_devices_leave_glibc_alone():
    with keep_freed_memory():
        with keep_freed_memory():
            pass
        still = _probe(inside=True)  # the inner block's exit kept the outer one's settings
        with keep_freed_memory("cuda"):
            also = _probe(inside=True)
    with keep_freed_memory(torch.device("cuda")):
        untouched = _probe(inside=False)
    assert still and also
    assert not untouched


# A fresh interpreter, so that no earlier test's blocks have left holes in its heap that could serve a probe.
_STAGE = """
import sys
sys.path.insert(0, {tests!r})
from test_memory import _probe
from neurflow_graph.engine import memory
from neurflow_graph.engine.activations import compute_activations
from neurflow_graph.models.images import skimage_images
from neurflow_graph.engine.patches import make_patches
from neurflow_graph.models.presets import get_preset
import contextlib
preset = get_preset("resnet50")
model = preset.build().eval()  # random weights: only the allocations matter
placed = []
model.layer1.register_forward_hook(lambda *_: placed.append(_probe(inside={kept})))
with contextlib.nullcontext() if {kept} else memory.glibc_defaults():
    compute_activations(model, make_patches(skimage_images(["chelsea"], 224).images), ["layer1"], preset.normalize,
                        224, 16)
print(placed)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kept", [True, False])
def test_activation_stage_keeps_freed_memory(kept):
    """During the stage's forward passes large tensors come from the heap, unless glibc's own settings are asked for
    (``memory.glibc_defaults``)."""
    code = _STAGE.format(tests=str(Path(__file__).parent), kept=kept)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    placed = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert len(placed) > 1 and all(p == kept for p in placed), placed


def test_evaluation_runs_keeping_freed_memory(digits_bundle, digits_spec, tmp_path):
    """The paper's experiments run thousands of forward passes; every one of them inside a block."""
    subject = subject_from_bundle(digits_bundle, digits_spec)
    seen: list[bool] = []
    hook = digits_spec.model.register_forward_hook(lambda *_: seen.append(memory.keeping_freed_memory()))
    try:
        run_experiment("fidelity", [subject], tmp_path, {"samples": 1, "taus": [2]})
    finally:
        hook.remove()
    assert seen and all(seen)
    assert not memory.keeping_freed_memory()
