import numpy as np
import pytest
import torch

from neurflow_graph.engine.patches import make_patches
from neurflow_graph.errors import ConfigError


def test_224_gives_59_patches_per_image_with_boxes_inside_the_image():
    patches = make_patches(torch.rand(2, 3, 224, 224))
    assert len(patches) == 2 * 59
    assert np.bincount(patches.image_index).tolist() == [59, 59]
    assert sorted(np.unique(patches.granularity, return_counts=True)[1].tolist()) == [2, 18, 98]
    assert patches.boxes.min() >= 0 and patches.boxes.max() <= 224
    sides = patches.boxes[:, 2] - patches.boxes[:, 0]
    assert set(sides.tolist()) == {224, 112, 56}


def test_crops_are_the_boxes_resized():
    images = torch.rand(1, 1, 32, 32)
    patches = make_patches(images, granularities=(1.0, 0.5))
    crops = patches.crops(np.arange(len(patches)))
    assert crops.shape == (len(patches), 1, 32, 32)
    assert torch.equal(crops[0], images[0])
    for i in (1, len(patches) - 1):
        x0, y0, x1, y1 = patches.boxes[i]
        assert x1 - x0 == 16
        region = images[:, :, y0:y1, x0:x1]
        expected = torch.nn.functional.interpolate(region, size=(32, 32), mode="bilinear", align_corners=False)
        torch.testing.assert_close(crops[i], expected[0])
    assert patches.boxes[-1].tolist() == [16, 16, 32, 32]


@pytest.mark.parametrize("kwargs", [{"granularities": (0.0,)}, {"granularities": ()}, {"stride_ratio": 0}])
def test_bad_parameters_name_the_parameter(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        make_patches(torch.rand(1, 3, 32, 32), **kwargs)
