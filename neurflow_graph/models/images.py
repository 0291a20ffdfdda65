"""Class images: loaded from folders or scikit-image samples, resized, and filtered by the model.

Every loader returns an ``ImageSet``: an N x C x H x W float32 tensor in [0, 1] at the model's input
size, with a source description and a SHA-256 per image for provenance.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from neurflow_graph.errors import ConfigError, DataError, MissingDependency

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SKLEARN_SAMPLE_NAMES = ("china.jpg", "flower.jpg")
# skimage.data names that return something other than one 2-D or RGB(A) image, or are helpers.
_SKIMAGE_EXCLUDED = {"data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename",
                     "stereo_motorcycle", "lfw_subset", "cells3d", "kidney", "brain"}


@dataclass(frozen=True)
class ImageSet:
    """Images (N x C x H x W, float32 in [0, 1]) with one source description and SHA-256 per image.

    ``unreadable`` names the files of the source that could not be read and were skipped.
    """

    images: torch.Tensor
    sources: tuple[str, ...]
    sha256: tuple[str, ...]
    unreadable: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        """The images at ``indices``, in that order."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        return ImageSet(
            images=self.images[index].contiguous(),
            sources=tuple(self.sources[i] for i in index.tolist()),
            sha256=tuple(self.sha256[i] for i in index.tolist()),
            unreadable=self.unreadable,
        )


def _check_geometry(input_size: int, in_channels: int) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ConfigError(f"input_size must be a positive integer (pixels), got {input_size!r}")
    if in_channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 (grayscale) or 3 (RGB), got {in_channels!r}")


def _to_mode(image: Image.Image, in_channels: int) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if in_channels == 1 else "RGB")


def _resize_center_crop(image: Image.Image, input_size: int) -> Image.Image:
    # The standard evaluation transform: shorter side to input_size, then a centre crop.
    width, height = image.size
    scale = input_size / min(width, height)
    new_w, new_h = max(input_size, round(width * scale)), max(input_size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - input_size) // 2, (new_h - input_size) // 2
    return image.crop((left, top, left + input_size, top + input_size))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _tensor_sha256(image: torch.Tensor) -> str:
    return hashlib.sha256(image.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (by suffix), sorted by name: what a folder source reads."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(
    path: str | os.PathLike[str], class_name: str | None, input_size: int, in_channels: int = 3
) -> ImageSet:
    """Images of one class from ``path/class_name`` (or the flat folder ``path`` when class_name is None).

    Each image is resized (shorter side to ``input_size``) and centre-cropped; unreadable files are
    skipped with a warning and listed in the result's ``unreadable``.
    """
    _check_geometry(input_size, in_channels)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass a folder of images or of class subfolders")
    folder = root
    if class_name is not None:
        if not class_name or Path(class_name).name != class_name or class_name in (".", ".."):
            raise ConfigError(f"class_name must be a single folder name, got {class_name!r}")
        folder = root / class_name
        if not folder.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            listed = ", ".join(found[:20]) + (f", ... ({len(found)} in all)" if len(found) > 20 else "")
            if found:
                fix = f"its subfolders are {listed}; pass one of these as the class name"
            elif list_images(root):
                fix = "it holds images directly: load it as a flat folder (no class name) for a single class"
            else:
                fix = "it has no subfolders and no images; pass a folder of images or of class subfolders"
            raise DataError(f"no subfolder {class_name!r} in {root}; {fix}")
    files = list_images(folder)
    if not files:
        hint = ""
        if class_name is None and any(p.is_dir() for p in folder.iterdir()):
            hint = " (it has subfolders: pass a class name to pick one)"
        raise DataError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}{hint}; "
            "add images or pick another folder"
        )
    images, sources, hashes, unreadable = [], [], [], []
    for file in files:
        try:
            data = file.read_bytes()
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                image = _to_mode(ImageOps.exif_transpose(opened), in_channels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            warnings.warn(f"skipping unreadable image {file}: {exc}", stacklevel=2)
            unreadable.append(str(file))
            continue
        images.append(_to_tensor(_resize_center_crop(image, input_size)))
        sources.append(str(file))
        hashes.append(hashlib.sha256(data).hexdigest())
    if not images:
        raise DataError(f"none of the {len(files)} image files in {folder} could be read; check the files")
    return ImageSet(images=torch.stack(images), sources=tuple(sources), sha256=tuple(hashes),
                    unreadable=tuple(unreadable))


def image_set_from_tensors(images: torch.Tensor, sources: Sequence[str] | None = None) -> ImageSet:
    """Wrap an N x C x H x W tensor of values in [0, 1]; sources default to "tensor#i"."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"images must be a non-empty N x C x H x W tensor, got {shape}; stack them first")
    images = images.detach().to("cpu", torch.float32).contiguous()
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0 or not np.isfinite([low, high]).all():
        raise DataError(
            f"image values must lie in [0, 1], got [{low:.3g}, {high:.3g}]; rescale before normalising"
        )
    if sources is None:
        sources = [f"tensor#{i}" for i in range(images.shape[0])]
    sources = tuple(str(s) for s in sources)
    if len(sources) != images.shape[0]:
        raise ConfigError(
            f"sources has {len(sources)} entries for {images.shape[0]} images; pass one per image"
        )
    return ImageSet(images=images, sources=sources, sha256=tuple(_tensor_sha256(img) for img in images))


def filter_predicted(
    model: torch.nn.Module,
    images: ImageSet,
    class_index: int,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> tuple[ImageSet, int]:
    """Keep the images whose top-1 prediction is ``class_index``; returns (kept, number dropped).

    ``model`` must already be on ``device``; it is run in eval mode and its mode restored afterwards.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(class_index, bool) or not isinstance(class_index, int) or class_index < 0:
        raise ConfigError(f"class_index must be a non-negative integer, got {class_index!r}")
    if len(images) == 0:
        raise DataError("no images to filter; load at least one image of the class")
    was_training = model.training
    model.eval()
    predictions = []
    try:
        with torch.no_grad():
            for batch in images.images.split(batch_size):
                logits = model(normalize(batch.to(device)))
                if class_index >= logits.shape[1]:
                    raise ConfigError(
                        f"class_index {class_index} is out of range for a model with {logits.shape[1]} "
                        "classes; pass a valid class index"
                    )
                predictions.append(logits.argmax(dim=1).cpu())
    finally:
        model.train(was_training)
    predicted = torch.cat(predictions)
    keep = (predicted == class_index).nonzero().flatten().tolist()
    if not keep:
        top, count = Counter(predicted.tolist()).most_common(1)[0]
        raise DataError(
            f"none of the {len(images)} images is predicted as class {class_index}; the model predicted "
            f"class {top} most often ({count} images); check the images, the class index or the weights"
        )
    return images.subset(keep), len(images) - len(keep)


def _skimage_array(name: str) -> np.ndarray:
    if name in SKLEARN_SAMPLE_NAMES:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)
    try:
        import skimage.data
    except ImportError:
        raise MissingDependency(f"sample image {name!r} needs scikit-image; "
                                "pip install 'neurflow-graph[images]'") from None

    loader = getattr(skimage.data, name, None)
    if name.startswith("_") or name in _SKIMAGE_EXCLUDED or not callable(loader):
        offline = [n for n in skimage.data.__all__ if n not in _SKIMAGE_EXCLUDED]
        raise ConfigError(
            f"unknown sample image {name!r}; use a skimage.data name ({', '.join(offline)}) "
            f"or {', '.join(SKLEARN_SAMPLE_NAMES)}"
        )
    try:
        array = loader()
    except (ImportError, OSError, ValueError) as exc:  # files fetched with pooch need it and a network
        raise DataError(
            f"skimage.data.{name} is not available offline ({str(exc).splitlines()[0][:120]}); "
            "pick a bundled image such as chelsea, coffee, astronaut or rocket"
        ) from exc
    array = np.asarray(array)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ConfigError(
            f"skimage.data.{name} is not a 2-D or RGB image (shape {array.shape}); pick another"
        )
    return array


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        scale = 1.0 if low >= 0.0 and high <= 1.0 else max(high - low, 1e-12)
        offset = 0.0 if scale == 1.0 else low
        array = np.round((array.astype(np.float64) - offset) / scale * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _augmented(image: Image.Image, rng: np.random.Generator, input_size: int) -> tuple[Image.Image, str]:
    # A square crop of 60-95% of the shorter side at a random place, flipped half of the time.
    width, height = image.size
    side = max(1, round(min(width, height) * rng.uniform(0.6, 0.95)))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side))
    flip = bool(rng.random() < 0.5)
    if flip:
        crop = ImageOps.mirror(crop)
    crop = crop.resize((input_size, input_size), Image.Resampling.BILINEAR)
    return crop, f"crop({left},{top},{side})" + (",flip" if flip else "")


def skimage_images(
    names: Sequence[str], input_size: int, augment: int = 0, seed: int = 0, in_channels: int = 3
) -> ImageSet:
    """Sample photos by name (skimage.data, or sklearn's "china.jpg"/"flower.jpg"), resized and cropped.

    ``augment`` adds that many deterministic copies per image (random square crops and flips from
    ``seed``), so a class with one real photo still has several images.
    """
    _check_geometry(input_size, in_channels)
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ConfigError("names is empty; pass at least one sample image name such as 'chelsea'")
    if isinstance(augment, bool) or not isinstance(augment, int) or augment < 0:
        raise ConfigError(f"augment must be a non-negative integer (copies per image), got {augment!r}")
    images, sources = [], []
    for position, name in enumerate(names):
        image = _to_mode(_array_to_pil(_skimage_array(name)), in_channels)
        prefix = "sklearn" if name in SKLEARN_SAMPLE_NAMES else "skimage"
        images.append(_to_tensor(_resize_center_crop(image, input_size)))
        sources.append(f"{prefix}:{name}")
        rng = np.random.default_rng([seed, position])
        for copy in range(1, augment + 1):
            augmented, description = _augmented(image, rng, input_size)
            images.append(_to_tensor(augmented))
            sources.append(f"{prefix}:{name}#aug{copy}:{description}")
    stacked = torch.stack(images)
    return ImageSet(images=stacked, sources=tuple(sources), sha256=tuple(_tensor_sha256(i) for i in stacked))
