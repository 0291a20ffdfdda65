"""Which images `debug` scores: a folder, or by default what the recipe's image source offers for the class."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from neurflow_graph.images import ImageSet, image_set_from_tensors, load_image_folder


@dataclass(frozen=True)
class DebugImages:
    """An image set to debug, its true labels when known (so false positives can be told apart), a description."""

    images: ImageSet
    labels: tuple[int, ...] | None
    description: str


def folder_images(path: str | os.PathLike[str], input_size: int, in_channels: int,
                  max_images: int | None = None) -> DebugImages:
    """Every image of a flat folder (resized and centre-cropped to the model's input), labels unknown."""
    images = load_image_folder(path, None, input_size, in_channels)
    if max_images is not None and len(images) > max_images:
        images = images.subset(range(max_images))
    return DebugImages(images, None, f"{len(images)} images from folder {path}")


def recipe_images(prepared, class_index: int, device: str | torch.device,
                  max_images: int | None = None) -> DebugImages:
    """Default images of a recipe's class.

    Digits: every image of the recipe's split that the model predicts as the class, true and false positives
    alike, labelled. Other sources: the class's own images the model predicts as the class (the recipe's set).
    """
    recipe, preset = prepared.recipe, prepared.preset
    if recipe.images.source == "digits":
        from neurflow_graph.digits import digits_images

        split = recipe.images.split
        tensors, labels = digits_images(None, split=split)
        model = prepared.model.to(device).eval()
        with torch.no_grad():
            predicted = torch.cat([model(preset.normalize(b.to(device))).argmax(1).cpu() for b in tensors.split(256)])
        keep = (predicted == class_index).nonzero().flatten()
        keep = keep[:max_images] if max_images is not None else keep
        if len(keep) == 0:
            from neurflow_graph.errors import DataError

            raise DataError(f"no digits {split} image is predicted as class {class_index}")
        images = image_set_from_tensors(tensors[keep], [f"digits:{split}#{int(i)}" for i in keep])
        kept_labels = tuple(int(v) for v in labels[keep])
        wrong = sum(1 for v in kept_labels if v != class_index)
        return DebugImages(images, kept_labels, f"{len(images)} digits {split} images predicted as class "
                           f"{class_index} ({wrong} false positives)")
    from neurflow_graph.recipes import class_images

    images, _dropped = class_images(prepared, class_index, device)
    if max_images is not None and len(images) > max_images:
        images = images.subset(range(max_images))
    return DebugImages(images, None, f"{len(images)} images of class {class_index} from recipe {recipe.name} "
                       "(predicted as the class)")
