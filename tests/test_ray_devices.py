"""What a Ray worker asks for and which device it runs on, as pure functions (no Ray, no GPU needed)."""

from __future__ import annotations

import pytest

from neurflow_graph.distributed import PoolShape, RayOptions, pool_shape, worker_device
from neurflow_graph.errors import ConfigError


def test_gpu_workers_ask_for_a_gpu_and_a_share_of_the_cpus():
    cluster = {"CPU": 32.0, "GPU": 4.0}
    assert pool_shape(cluster, RayOptions(), n_classes=100) == PoolShape(workers=4, gpus=1.0, cpus=7.0)
    # fewer classes than GPUs: fewer workers, each with more CPUs
    assert pool_shape(cluster, RayOptions(), n_classes=2) == PoolShape(workers=2, gpus=1.0, cpus=15.0)
    half = pool_shape(cluster, RayOptions(gpus_per_worker=0.5), n_classes=100)
    assert (half.workers, half.gpus) == (8, 0.5) and half.workers * half.cpus <= cluster["CPU"] - 1
    tight = pool_shape({"CPU": 2.0, "GPU": 4.0}, RayOptions(), n_classes=100)
    assert tight.cpus >= 1.0 and tight.gpus == 1.0


def test_cpu_workers_ask_for_one_cpu_each():
    assert pool_shape({"CPU": 8.0}, RayOptions(), n_classes=100) == PoolShape(workers=8, gpus=0.0, cpus=1.0)
    assert pool_shape({"CPU": 8.0}, RayOptions(workers=3), n_classes=100).workers == 3


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:0", "cuda:3"])
def test_inside_a_gpu_worker_the_device_is_its_own_cuda0(device):
    assert worker_device(device, gpus=1.0) == "cuda:0"  # Ray shows the actor its assigned GPU only


def test_cpu_workers_run_on_the_cpu_and_refuse_a_cuda_recipe():
    assert worker_device("auto", gpus=0.0) == "cpu"
    assert worker_device("cpu:0", gpus=0.0) == "cpu:0"
    with pytest.raises(ConfigError, match="--gpus-per-worker") as caught:
        worker_device("cuda:1", gpus=0.0)
    assert "\n" not in str(caught.value)
