"""Image folders and sample images load as ImageSets; filtering keeps what the model predicts as the class."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from neurflow_graph.errors import ConfigError, DataError
from neurflow_graph.models.digits import digits_images, load_digits_model, normalize_digits
from neurflow_graph.models.images import filter_predicted, image_set_from_tensors, load_image_folder, skimage_images

SYNSET = "n02123045"


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """root/n02123045 with three real photos (PNG), a corrupt JPEG and a text file; root/empty."""
    folder = tmp_path / "root" / SYNSET
    folder.mkdir(parents=True)
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    (tmp_path / "root" / "empty").mkdir()
    return tmp_path / "root"


def test_class_subfolder_skips_the_corrupt_file(image_root: Path) -> None:
    with pytest.warns(UserWarning, match="broken.jpg"):
        images = load_image_folder(image_root, SYNSET, input_size=64)
    assert images.images.shape == (3, 3, 64, 64)
    assert images.images.dtype == torch.float32
    assert 0.0 <= float(images.images.min()) and float(images.images.max()) <= 1.0
    assert [Path(s).name for s in images.sources] == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert images.unreadable == (str(image_root / SYNSET / "broken.jpg"),)  # named, not silently gone
    assert images.subset([2, 0]).unreadable == images.unreadable
    for source, digest in zip(images.sources, images.sha256, strict=True):
        assert digest == hashlib.sha256(Path(source).read_bytes()).hexdigest()


def test_flat_folder_grayscale_and_centre_crop(image_root: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="broken.jpg"):
        gray = load_image_folder(image_root / SYNSET, None, input_size=32, in_channels=1)
    assert gray.images.shape == (3, 1, 32, 32)
    # A wide image keeps its centre: left and right thirds are cut away.
    wide = np.zeros((30, 90, 3), dtype=np.uint8)
    wide[:, 30:60] = 255
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(wide).save(flat / "wide.bmp")
    loaded = load_image_folder(flat, None, input_size=30)
    assert loaded.images.shape == (1, 3, 30, 30)
    assert float(loaded.images[0, :, :, 2:-2].min()) > 0.9


def test_folder_errors(image_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere", None, input_size=64)
    with pytest.raises(DataError, match=rf"no subfolder 'n01440764' in .*; its subfolders are empty, {SYNSET}; "
                                        "pass one of these") as info:
        load_image_folder(image_root, "n01440764", input_size=64)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="it holds images directly: load it as a flat folder") as info:
        load_image_folder(image_root / SYNSET, "espresso", input_size=64)
    assert "\n" not in str(info.value) and "subfolders are" not in str(info.value)
    with pytest.raises(DataError, match="it has no subfolders and no images; pass a folder of images"):
        load_image_folder(image_root / "empty", "espresso", input_size=64)
    with pytest.raises(DataError, match="no image files"):
        load_image_folder(image_root, "empty", input_size=64)
    with pytest.raises(DataError, match="pass a class name"):
        load_image_folder(image_root, None, input_size=64)
    only_broken = tmp_path / "broken"
    only_broken.mkdir()
    (only_broken / "a.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(DataError, match="none of the 1 image files"):
        load_image_folder(only_broken, None, input_size=64)
    with pytest.raises(ConfigError, match="in_channels"):
        load_image_folder(image_root, SYNSET, input_size=64, in_channels=4)


def test_image_set_from_tensors() -> None:
    images = torch.rand(3, 1, 8, 8)
    wrapped = image_set_from_tensors(images)
    assert wrapped.sources == ("tensor#0", "tensor#1", "tensor#2")
    assert wrapped.sha256 == image_set_from_tensors(images.clone(), ["a", "b", "c"]).sha256
    assert len(set(wrapped.sha256)) == 3
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        image_set_from_tensors(images * 255)
    with pytest.raises(DataError, match="N x C x H x W"):
        image_set_from_tensors(images[0])
    with pytest.raises(ConfigError, match="2 entries for 3 images"):
        image_set_from_tensors(images, ["a", "b"])


def test_filter_predicted_keeps_the_class() -> None:
    model = load_digits_model()  # the session's cache folder (tests/conftest.py)
    threes, _ = digits_images(class_index=3)
    fives, _ = digits_images(class_index=5)
    mixed = image_set_from_tensors(torch.cat([threes, fives]))
    kept, dropped = filter_predicted(model, mixed, 3, normalize_digits, batch_size=16)
    assert len(kept) + dropped == len(mixed)
    assert len(threes) - 2 <= len(kept) <= len(threes) + 2
    with torch.no_grad():
        assert bool((model(normalize_digits(kept.images)).argmax(dim=1) == 3).all())
    first = mixed.sources.index(kept.sources[0])
    assert torch.equal(kept.images[0], mixed.images[first]) and kept.sha256[0] == mixed.sha256[first]
    # Batching does not change the outcome.
    assert filter_predicted(model, mixed, 3, normalize_digits, batch_size=1000)[0].sources == kept.sources


def test_filter_predicted_none_kept() -> None:
    model = load_digits_model()
    fives = image_set_from_tensors(digits_images(class_index=5)[0])
    with pytest.raises(DataError, match=r"none of the \d+ images is predicted as class 3; .* class 5 most often"):
        filter_predicted(model, fives, 3, normalize_digits)
    with pytest.raises(ConfigError, match="out of range for a model with 10 classes"):
        filter_predicted(model, fives, 12, normalize_digits)
    model.train()
    filter_predicted(model, fives, 5, normalize_digits)
    assert model.training  # the caller's mode is restored


def test_skimage_images_augment_deterministically() -> None:
    images = skimage_images(["chelsea", "china.jpg", "camera"], input_size=48, augment=3, seed=1)
    assert images.images.shape == (12, 3, 48, 48)
    assert images.sources[0] == "skimage:chelsea" and images.sources[4] == "sklearn:china.jpg"
    assert images.sources[1].startswith("skimage:chelsea#aug1:crop(")
    assert len(set(images.sha256)) == 12
    again = skimage_images(["chelsea", "china.jpg", "camera"], input_size=48, augment=3, seed=1)
    assert again.sha256 == images.sha256 and again.sources == images.sources
    other_seed = skimage_images(["chelsea"], input_size=48, augment=3, seed=2)
    assert other_seed.sha256[0] == images.sha256[0] and other_seed.sha256[1:] != images.sha256[1:4]
    assert skimage_images(["camera"], input_size=16, in_channels=1).images.shape == (1, 1, 16, 16)
    with pytest.raises(ConfigError, match="unknown sample image 'nope'"):
        skimage_images(["nope"], input_size=48)
    with pytest.raises(ConfigError, match="augment"):
        skimage_images(["chelsea"], input_size=48, augment=-1)
