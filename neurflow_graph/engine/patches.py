"""Step 1: the probe set D of square image crops at several granularities, cut lazily from the images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurflow_graph.errors import ConfigError


@dataclass(frozen=True)
class Patches:
    """Crops of ``images`` (N×C×H×W in [0, 1]); row i of the arrays describes patch i.

    ``boxes`` holds (x0, y0, x1, y1) pixel boxes in the source image.
    """

    images: torch.Tensor
    image_index: np.ndarray
    granularity: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.image_index)

    def crops(self, ids: Sequence[int] | np.ndarray, size: int | None = None) -> torch.Tensor:
        """The patches ``ids`` resized (bilinear) to ``size`` (default: the image size), as a B×C×S×S tensor."""
        ids = np.asarray(ids, dtype=np.int64)
        size = size or self.images.shape[-1]
        out = torch.empty((len(ids), self.images.shape[1], size, size), dtype=self.images.dtype)
        boxes = self.boxes[ids]
        sides = boxes[:, 2] - boxes[:, 0]
        for side in np.unique(sides):  # one interpolate call per crop size
            rows = np.nonzero(sides == side)[0]
            stack = torch.stack([
                self.images[self.image_index[ids[r]], :, boxes[r, 1] : boxes[r, 3], boxes[r, 0] : boxes[r, 2]]
                for r in rows
            ])
            if stack.shape[-1] != size:
                stack = F.interpolate(stack, size=(size, size), mode="bilinear", align_corners=False)
            out[torch.as_tensor(rows)] = stack
        return out


def _positions(side: int, crop: int, stride: int) -> list[int]:
    return list(range(0, side - crop + 1, stride))


def make_patches(
    images: torch.Tensor, granularities: Sequence[float] = (1.0, 0.5, 0.25), stride_ratio: float = 0.5
) -> Patches:
    """Cut every image into square crops of ``granularity × side`` with stride ``stride_ratio × crop side``.

    At 224 px with the defaults that is 1 + 9 + 49 = 59 patches per image.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ConfigError(f"images must be an N×C×S×S tensor of square images, got shape {tuple(images.shape)}")
    if not granularities or any(not 0 < g <= 1 for g in granularities):
        raise ConfigError(f"granularities must be fractions in (0, 1], got {list(granularities)}")
    if not 0 < stride_ratio <= 1:
        raise ConfigError(f"stride_ratio must be in (0, 1], got {stride_ratio}")
    side = images.shape[-1]
    boxes, grans = [], []
    for g in granularities:
        crop = max(1, round(g * side))
        stride = min(max(1, round(stride_ratio * crop)), max(1, side - crop))
        for y in _positions(side, crop, stride):
            for x in _positions(side, crop, stride):
                boxes.append((x, y, x + crop, y + crop))
                grans.append(g)
    per_image = len(boxes)
    n = images.shape[0]
    return Patches(
        images=images,
        image_index=np.repeat(np.arange(n), per_image),
        granularity=np.tile(np.asarray(grans, dtype=np.float64), n),
        boxes=np.tile(np.asarray(boxes, dtype=np.int64), (n, 1)),
    )
