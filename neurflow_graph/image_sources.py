"""A recipe's image sources: where a class's images come from, how they are read, hashed and filtered.

Digits, skimage sample photos, or a folder (flat, a subfolder per class, or an ImageFolder tree sorted to class
indices). What run.json records of a source, and the source read back from it, are here too.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from neurflow_graph.errors import ConfigError
from neurflow_graph.recipes import ImageSource, PreparedModel, Recipe

if TYPE_CHECKING:
    from neurflow_graph.models.images import ImageSet


def image_source_record(src: ImageSource) -> dict:
    """The image source as run.json records it (folder paths made absolute), enough to load the images again."""
    record = dataclasses.asdict(src)
    record["names"] = list(src.names)
    if src.path is not None:
        record["path"] = str(Path(src.path).expanduser().resolve())
    return record


def image_source_from_record(record: dict) -> ImageSource:
    """The ImageSource that ``image_source_record`` wrote (unknown keys are a ConfigError)."""
    fields = {f.name for f in dataclasses.fields(ImageSource)}
    unknown = sorted(set(record) - fields)
    if unknown or "source" not in record:
        raise ConfigError(f"image source record {record!r} is not one this release reads (keys: {', '.join(fields)})")
    return ImageSource(**{**record, "names": tuple(record.get("names", ()))})


def class_folder(src: ImageSource, class_name: str, n_classes: int = 1) -> str | None:
    """The subfolder holding a class's images, or None for a flat folder of one class's images.

    By default the class's subfolder; a folder without it that holds images itself (e.g. ``--images DIR``
    of espresso photos) is read flat, which only makes sense for a single class.
    """
    from neurflow_graph.models.images import list_images

    if src.folder is not None:
        return src.folder or None
    root = Path(src.path).expanduser()
    if (root / class_name).is_dir() or not root.is_dir() or not list_images(root):
        return class_name
    if n_classes > 1:
        raise ConfigError(
            f"{root} holds images directly, not a subfolder per class, so they are the images of one class; "
            f"pass one --class, not {n_classes}"
        )
    return None


def class_images(prepared: PreparedModel, class_index: int, device) -> tuple[ImageSet, int]:
    """The recipe's images of one class that the model predicts as that class, and how many were dropped."""
    recipe = prepared.recipe
    return predicted_images(prepared, source_images(prepared, recipe.images, class_index, recipe.params.seed),
                            class_index, device)


def predicted_images(prepared: PreparedModel, images: ImageSet, class_index: int, device) -> tuple[ImageSet, int]:
    """Of a class's candidate ``images``, those the model predicts as the class (at most ``max_images``), and how
    many were dropped."""
    from neurflow_graph.engine.devices import on_device
    from neurflow_graph.models.images import filter_predicted

    src = prepared.recipe.images
    model = on_device(prepared.model, device)  # the prepared model (shared by every class) is not moved
    kept, dropped = filter_predicted(model, images, class_index, prepared.preset.normalize, device=device)
    if src.max_images is not None and len(kept) > src.max_images:
        kept = kept.subset(range(src.max_images))
    return kept, dropped


def candidate_sha256(prepared: PreparedModel, class_index: int, loaded: ImageSet | None = None) -> tuple[str, ...]:
    """SHA-256 of every image the recipe offers for the class, before filtering by prediction: a folder's image
    files as read (their bytes, not decoded: cheap on a driver), else the images ``source_images`` gives
    (``loaded`` when the caller has them)."""
    import hashlib

    from neurflow_graph.models.images import list_images

    recipe = prepared.recipe
    src = recipe.images
    if src.source == "folder":
        folder = source_folder(prepared, src, class_index)
        root = Path(src.path).expanduser()
        return tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in list_images(root / folder if folder
                                                                                         else root))
    return (loaded or source_images(prepared, src, class_index, recipe.params.seed)).sha256


def source_images(prepared: PreparedModel, src: ImageSource, class_index: int, seed: int):
    """Every image ``src`` offers for the class at the model's input size, before filtering by prediction
    (``seed`` draws skimage augmentations)."""
    from neurflow_graph.models.images import image_set_from_tensors, load_image_folder, skimage_images

    preset = prepared.preset
    if src.source == "digits":
        from neurflow_graph.models.digits import digits_images

        tensors, _labels = digits_images(class_index, split=src.split)
        images = image_set_from_tensors(tensors, [f"digits:{src.split}#{i}" for i in range(len(tensors))])
    elif src.source == "skimage":
        images = skimage_images(list(src.names), preset.input_size, augment=src.augment,
                                seed=seed, in_channels=preset.in_channels)
    else:
        images = load_image_folder(src.path, source_folder(prepared, src, class_index), preset.input_size,
                                   preset.in_channels)
    return images


def source_folder(prepared: PreparedModel, src: ImageSource, class_index: int) -> str | None:
    """The subfolder of a folder source holding the class's images (None: the folder itself)."""
    if src.layout == "imagefolder":
        return class_folders(src.path, len(prepared.class_names))[class_index]
    return class_folder(src, prepared.class_names[class_index], len(prepared.recipe.classes))


def class_folders(path: str | os.PathLike, n_classes: int) -> list[str]:
    """The class folders of an ImageFolder tree (ImageNet val: one per WordNet id), sorted: index i is folder i.

    The tree must hold one folder per class of the model, so that sorting gives the model's class indices.
    """
    from neurflow_graph.errors import DataError

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass the validation folder (one subfolder per class)")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) != n_classes:
        raise DataError(f"{root} has {len(folders)} class folders, the model has {n_classes} classes; the "
                        "imagefolder layout needs one folder per class (sorted names give the class indices)")
    return folders


def classes_present(recipe: Recipe, n_classes: int) -> list[int]:
    """Indices of the classes whose folder holds at least one image (``--classes all`` on an ImageFolder tree)."""
    from neurflow_graph.models.images import IMAGE_SUFFIXES

    root = Path(recipe.images.path or "").expanduser()
    return [i for i, name in enumerate(class_folders(root, n_classes))
            if any(f.suffix.lower() in IMAGE_SUFFIXES for f in (root / name).iterdir())]
