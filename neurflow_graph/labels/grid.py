"""The picture a model is shown for one neuron group: its exemplar patches tiled into one PNG grid."""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence

from PIL import Image

from neurflow_graph.errors import ConfigError

TILE = 96
"""Tile side in pixels (the bundle's thumbnails are 96×96)."""
COLUMNS = 4
"""Tiles per row: 8 exemplars make a 4×2 grid."""
GAP = 4
"""Pixels of grey between tiles, so the model sees separate patches."""
GAP_COLOUR = (128, 128, 128)


def grid_size(n: int, *, columns: int = COLUMNS, tile: int = TILE, gap: int = GAP) -> tuple[int, int]:
    """(width, height) in pixels of the grid of `n` tiles: min(n, columns) per row, as many rows as needed."""
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"a grid needs at least one tile, got n={n!r}")
    cols = min(n, columns)
    rows = math.ceil(n / cols)
    return cols * tile + (cols - 1) * gap, rows * tile + (rows - 1) * gap


def exemplar_grid(
    images: Sequence[Image.Image | str | os.PathLike[str]],
    *,
    columns: int = COLUMNS,
    tile: int = TILE,
    gap: int = GAP,
) -> Image.Image:
    """Tile `images` (or image files), best exemplar first, row by row into one RGB image of `grid_size`."""
    if not isinstance(columns, int) or columns < 1:
        raise ConfigError(f"columns must be an int >= 1, got {columns!r}")
    width, height = grid_size(len(images), columns=columns, tile=tile, gap=gap)
    cols = min(len(images), columns)
    grid = Image.new("RGB", (width, height), GAP_COLOUR)
    for i, item in enumerate(images):
        image = item if isinstance(item, Image.Image) else _open(item)
        image = image.convert("RGB")
        if image.size != (tile, tile):
            image = image.resize((tile, tile), Image.Resampling.LANCZOS)
        row, col = divmod(i, cols)
        grid.paste(image, (col * (tile + gap), row * (tile + gap)))
    return grid


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG (deterministic: no timestamps or text chunks)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A `data:image/png;base64,…` URI, the form chat-completions endpoints accept for an image."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _open(path: str | os.PathLike[str]) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image
