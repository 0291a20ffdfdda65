"""The one way this package reads weights from disk: ``torch.load(weights_only=True)``, hash-checked where it can be.

Every weight file the package loads passes through ``read_state_dict``: a local checkpoint, a torchvision
weights name (its file in torch hub's cache, downloaded there when missing), a package's file
(EfficientNet-Lite0) and the digits caches. A file on disk is data, never code: a pickle that would run
code is refused in one line before anything of it runs, and torchvision's files are checked against the
SHA-256 prefix in their names before they are even unpickled.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from neurflow_graph.errors import ConfigError

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub's convention: resnet50-11ad3fa6.pth


def read_state_dict(path: str | os.PathLike[str], *, sha256_prefix: str | None = None,
                    what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (plain, or under "state_dict"/"model"; "module." prefixes stripped).

    Unpickled with ``weights_only=True`` only; with ``sha256_prefix`` the file's SHA-256 must start with it
    before it is read at all. Any problem is one ConfigError line naming the file (``what`` says what it is).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{what} {file} does not exist; pass the path of a saved state dict (.pt/.pth)")
    if sha256_prefix is not None:
        digest = file_sha256(file)
        if not digest.startswith(sha256_prefix):
            raise ConfigError(
                f"{what} {file} has SHA-256 {digest[:12]}, its name promises {sha256_prefix}: it is not the "
                "published file; delete it to download it again, or pass checkpoint=PATH"
            )
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ConfigError(
            f"{what} {file} is not a weights-only torch file ({reason}); "
            "re-save it with torch.save(model.state_dict(), path)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ConfigError(
            f"{what} {file} holds no state dict of tensors; save it with torch.save(model.state_dict(), path)"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _examples(keys: set[str]) -> str:
    shown = sorted(keys)[:3]
    return ", ".join(shown) + (", ..." if len(keys) > 3 else "")


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, *,
               ignore_prefixes: tuple[str, ...] = ()) -> nn.Module:
    """Load ``state`` into ``model`` strictly (keys and shapes must fit; ``ignore_prefixes`` dropped first)."""
    if ignore_prefixes:
        state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    expected = model.state_dict()
    missing = {k for k in expected.keys() - state.keys() if not k.endswith("num_batches_tracked")}
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        raise ConfigError(
            f"{source} does not fit {type(model).__name__}: {len(missing)} missing keys"
            f"{f' ({_examples(missing)})' if missing else ''}, {len(unexpected)} unexpected keys"
            f"{f' ({_examples(unexpected)})' if unexpected else ''}; pass a checkpoint of this architecture"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ConfigError(
                f"{source} does not fit {type(model).__name__}: {key} has shape "
                f"{tuple(value.shape)}, the model expects {tuple(expected[key].shape)}; "
                "pass a checkpoint of this architecture"
            )
    model.load_state_dict(state, strict=False)
    return model


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, ignore_prefixes: tuple[str, ...] = ()
) -> nn.Module:
    """Load a checkpoint file (see ``read_state_dict``) into ``model`` strictly; returns ``model``."""
    file = Path(path).expanduser()
    return load_state(model, read_state_dict(file), f"checkpoint {file}", ignore_prefixes=ignore_prefixes)


def hub_file(url: str) -> tuple[Path, str | None]:
    """Where torch hub caches the file at ``url`` (``$TORCH_HOME/hub/checkpoints``) and the SHA-256 prefix its
    name carries (None when it carries none)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    match = _HASH_IN_NAME.search(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / name, match.group(1) if match else None


def torchvision_state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision's weights ``weights`` for ``arch``, read from torch hub's cache (downloaded
    there, hash-checked, when missing) through ``read_state_dict``, never through torchvision's own loader
    (which unpickles with ``weights_only=False``)."""
    from neurflow_graph._compat import import_torchvision

    torchvision = import_torchvision()
    enum = torchvision.models.get_model_weights(arch)[weights]
    cached, prefix = hub_file(enum.url)
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(enum.url, str(cached), hash_prefix=prefix, progress=False)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; a hash mismatch a RuntimeError
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ConfigError(
                f"{arch} weights {weights} are not in {cached} and could not be downloaded ({reason}); "
                f"put {cached.name} there or pass checkpoint=PATH"
            ) from None
    return read_state_dict(cached, sha256_prefix=prefix, what=f"{arch} weights {weights} file")
