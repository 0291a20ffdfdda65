"""Pictures for self-contained pages: PNG files and image tensors as base64 data URIs, grey boxes when missing."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

PLACEHOLDER_GREY = (204, 204, 204)


def data_uri(png: bytes) -> str:
    """PNG bytes as a `data:image/png;base64,…` URI (no file or network needed to show it)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_uri(path: Path | None) -> str | None:
    """The data URI of a PNG file, or None when the file is missing or unreadable (the caller draws a grey box)."""
    if path is None:
        return None
    try:
        return data_uri(Path(path).read_bytes())
    except OSError:
        return None


def tensor_to_pil(image: torch.Tensor, size: int | None = None) -> Image.Image:
    """A C×H×W image in [0, 1] (C = 1 or 3) as a PIL RGB image, optionally resized to size×size."""
    array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    picture = Image.fromarray(array, mode="RGB")
    if size:
        picture = picture.resize((size, size), Image.Resampling.NEAREST if picture.width < size else
                                 Image.Resampling.BILINEAR)
    return picture


def pil_png(picture: Image.Image) -> bytes:
    """PNG bytes of a PIL image."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def tensor_uri(image: torch.Tensor, size: int = 96) -> str:
    """A C×H×W image tensor in [0, 1] as a PNG data URI."""
    return data_uri(pil_png(tensor_to_pil(image, size)))


def load_thumbnail(path: Path | None, size: int) -> Image.Image:
    """A thumbnail file as an RGB image of size×size, or a grey box when it is missing (bundle moved)."""
    if path is not None:
        try:
            with Image.open(path) as picture:
                return picture.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except OSError:
            pass
    return Image.new("RGB", (size, size), PLACEHOLDER_GREY)
