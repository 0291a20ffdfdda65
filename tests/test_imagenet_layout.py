"""The ImageNet validation layout: one folder per WordNet id, sorted to class indices (ImageFolder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow_graph.errors import DataError
from neurflow_graph.image_sources import class_folders
from neurflow_graph.jobs import select_classes
from neurflow_graph.models.presets import imagenet_class_names
from neurflow_graph.recipes import load_recipe

INGEST = Path(__file__).resolve().parents[1] / "ingest"
PHOTOS = {"tabby": "chelsea", "espresso": "coffee", "rocking chair": "astronaut"}  # a class name -> a skimage photo


@pytest.fixture(scope="module")
def val_tree(tmp_path_factory) -> tuple[Path, dict[int, str]]:
    """1000 WordNet-id-like folders; three hold real photos (JPEG) of a class, the rest are empty."""
    from PIL import Image
    from skimage import data

    names = imagenet_class_names()
    root = tmp_path_factory.mktemp("val")
    wnids = sorted(f"n{1440764 + 7919 * i:08d}" for i in range(len(names)))
    for wnid in wnids:
        (root / wnid).mkdir()
    filled = {}
    for class_name, photo in PHOTOS.items():
        index = names.index(class_name)
        image = Image.fromarray(getattr(data, photo)()).convert("RGB")
        for i in range(2):
            image.rotate(5 * i).save(root / wnids[index] / f"ILSVRC2012_val_{index:05d}{i}.JPEG", quality=90)
        filled[index] = wnids[index]
    return root, filled


@pytest.mark.parametrize("recipe", ["resnet50-imagenet.toml", "googlenet-imagenet.toml"])
def test_imagenet_recipes_read_the_validation_layout(val_tree, recipe):
    root, filled = val_tree
    spec = load_recipe(INGEST / recipe).with_overrides(images=str(root))
    assert spec.images.layout == "imagefolder"
    assert select_classes(spec, "all") == tuple(str(i) for i in sorted(filled))  # every class folder with images
    folders = class_folders(root, len(imagenet_class_names()))
    assert folders == sorted(folders) and len(folders) == 1000
    for index, wnid in filled.items():
        assert folders[index] == wnid


def test_class_images_come_from_the_class_folder(val_tree):
    from neurflow_graph.models.images import load_image_folder

    root, filled = val_tree
    index = imagenet_class_names().index("tabby")
    folders = class_folders(root, 1000)
    images = load_image_folder(root, folders[index], 224)
    assert len(images) == 2 and all(Path(s).parent.name == filled[index] for s in images.sources)


def test_a_tree_without_one_folder_per_class_is_a_one_line_error(tmp_path):
    for wnid in ("n01440764", "n01443537"):
        (tmp_path / wnid).mkdir()
    with pytest.raises(DataError, match="has 2 class folders, the model has 1000 classes"):
        class_folders(tmp_path, 1000)


def test_a_recipe_on_an_imagefolder_tree_loads_each_class_from_its_sorted_folder(tmp_path, digits_model,
                                                                                 digits_preset):
    """The digits CNN on a 10-folder tree of real digits (JPEG): class i's kept images are folder i's."""
    from PIL import Image

    from neurflow_graph.image_sources import class_images
    from neurflow_graph.models.digits import digits_images
    from neurflow_graph.recipes import PreparedModel

    wnids = sorted(f"n{9000000 - 1111 * i:08d}" for i in range(10))  # sorted order differs from creation order
    for digit, wnid in enumerate(wnids):
        (tmp_path / wnid).mkdir()
        if digit in (2, 7):
            images, _ = digits_images(digit, split="test")
            for i, image in enumerate(images[:4]):
                Image.fromarray((image[0] * 255).round().byte().numpy(), mode="L").save(tmp_path / wnid / f"{i}.jpg")
    recipe_file = tmp_path / "tree.toml"
    recipe_file.write_text(f'[model]\npreset = "digits"\n[images]\nsource = "folder"\npath = "{tmp_path}"\n'
                           'layout = "imagefolder"\n[run]\nclass = "2"\n')
    recipe = load_recipe(recipe_file)
    assert select_classes(recipe, "all") == ("2", "7")
    prepared = PreparedModel(recipe, digits_preset, digits_model, digits_preset.class_names())
    for digit in (2, 7):
        kept, dropped = class_images(prepared, digit, "cpu")
        assert len(kept) + dropped == 4 and len(kept) > 0
        assert {Path(s).parent.name for s in kept.sources} == {wnids[digit]}
