"""Which images `debug` scores: a folder; by default the images the run was computed on, else the recipe's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from neurflow_graph.errors import NeurflowGraphError
from neurflow_graph.models.images import ImageSet, image_set_from_tensors, load_image_folder


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
        from neurflow_graph.engine.devices import on_device
        from neurflow_graph.models.digits import digits_images

        split = recipe.images.split
        tensors, labels = digits_images(None, split=split)
        model = on_device(prepared.model, device).eval()  # the prepared model is not moved
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
    from neurflow_graph.image_sources import class_images

    images, _dropped = class_images(prepared, class_index, device)
    if max_images is not None and len(images) > max_images:
        images = images.subset(range(max_images))
    return DebugImages(images, None, f"{len(images)} images of class {class_index} from recipe {recipe.name} "
                       "(predicted as the class)")


def run_images(run, prepared, max_images: int | None = None) -> DebugImages | None:
    """The images stored run `run` (a query RunInfo) was computed on, or None when they cannot be had.

    First loaded again from the image source its run.json records, when every one of the run's image
    hashes is found there (the exact tensors); else the 8-bit copies its bundle keeps under `images/`.
    """
    from neurflow_graph.bundle.files import read_bundle_images
    from neurflow_graph.image_sources import image_source_from_record, source_images

    meta = run.meta
    if meta is None:
        return None
    wanted = list(meta.images.sha256[:max_images] if max_images is not None else meta.images.sha256)
    labels = None
    if meta.images.source is not None:
        try:
            found = source_images(prepared, image_source_from_record(meta.images.source), meta.class_index,
                                  meta.params.seed)
        except NeurflowGraphError:
            found = None
        where = {h: i for i, h in enumerate(found.sha256)} if found is not None else {}
        if wanted and all(h in where for h in wanted):
            if meta.images.source.get("source") == "digits":
                labels = (meta.class_index,) * len(wanted)
            return DebugImages(found.subset([where[h] for h in wanted]), labels,
                               f"the {len(wanted)} images run {meta.run_id} was computed on "
                               f"(from its {meta.images.source['source']} source)")
    if run.bundle_path and (Path(run.bundle_path) / "images").is_dir():
        try:
            tensors = read_bundle_images(run.bundle_path, len(wanted))
        except NeurflowGraphError:
            return None
        sources = meta.images.sources[:len(wanted)] or [f"{run.bundle_path}/images/{i}.png" for i in range(len(wanted))]
        return DebugImages(image_set_from_tensors(tensors, sources), None,
                           f"the {len(wanted)} images run {meta.run_id} was computed on (8-bit copies from its "
                           f"bundle {run.bundle_path})")
    return None
