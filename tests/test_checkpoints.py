"""Weights on disk are data: every loader refuses a code-bearing pickle before any of it runs."""

from __future__ import annotations

import pathlib

import pytest
import torch
from click.testing import CliRunner

from neurflow_graph._compat import import_torchvision
from neurflow_graph.cli.main import main
from neurflow_graph.errors import ConfigError
from neurflow_graph.models.checkpoints import file_sha256, hub_file, read_state_dict, torchvision_state_dict
from neurflow_graph.models.digits import DigitsCNN, load_cached


class _Payload:
    """Unpickling this object calls ``Path.touch(marker)``: code that runs from a file."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def plant(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """A torch file at ``path`` whose full unpickling creates ``marker`` (checked here that it would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the plant works: a trusting loader runs it
    assert marker.exists()
    marker.unlink()
    return path


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """torch hub's cache under a fresh XDG_CACHE_HOME (TORCH_HOME unset), as a user's would be."""
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "torch" / "hub" / "checkpoints"


def alexnet_file(hub_home: pathlib.Path) -> pathlib.Path:
    torchvision = import_torchvision()
    cached, prefix = hub_file(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url)
    assert cached.parent == hub_home and prefix  # the name torchvision expects, with its hash prefix
    return cached


def test_a_poisoned_torchvision_cache_runs_nothing_and_the_cli_says_one_line(tmp_path, hub_home):
    marker = tmp_path / "ran"
    planted = plant(alexnet_file(hub_home), marker)
    recipe = tmp_path / "alexnet.toml"
    recipe.write_text('[model]\npreset = "alexnet"\nweights = "IMAGENET1K_V1"\n'
                      '[images]\nsource = "skimage"\nnames = ["chelsea"]\n[run]\nclass = "285"\n')
    result = CliRunner().invoke(main, ["run", str(recipe), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and str(planted) in result.output, result.output
    assert "not the published file" in result.output
    assert not marker.exists() and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="not the published file"):
        torchvision_state_dict("alexnet", "IMAGENET1K_V1")
    assert not marker.exists()


def test_weights_only_refuses_the_pickle_even_when_no_hash_guards_it(tmp_path):
    marker = tmp_path / "ran"
    planted = plant(tmp_path / "model.pt", marker)
    with pytest.raises(ConfigError, match="not a weights-only torch file") as info:
        read_state_dict(planted)
    assert "\n" not in str(info.value) and not marker.exists()
    with pytest.raises(ConfigError, match="not a weights-only torch file"):
        read_state_dict(planted, sha256_prefix=file_sha256(planted)[:8])  # a matching hash does not make it trusted
    assert not marker.exists()
    recipe = tmp_path / "digits.toml"
    recipe.write_text(f'[model]\npreset = "digits"\ncheckpoint = "{planted}"\n'
                      '[images]\nsource = "digits"\n[run]\nclass = "3"\n')
    result = CliRunner().invoke(main, ["run", str(recipe), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_poisoned_digits_cache_runs_nothing_and_is_rebuilt(tmp_path):
    marker = tmp_path / "ran"
    plant(tmp_path / "cache" / "tiny.pt", marker)

    def train():
        return DigitsCNN().eval(), {"trained": True}

    with pytest.warns(UserWarning, match="not a weights-only torch file"):
        model = load_cached("tiny.pt", "tiny.json", DigitsCNN, train, cache_dir=tmp_path / "cache")
    assert not marker.exists()
    again = load_cached("tiny.pt", "tiny.json", DigitsCNN, train, cache_dir=tmp_path / "cache")  # read back, clean
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                  strict=True))


def test_torchvision_weights_load_through_the_hash_checked_loader(tmp_path, hub_home):
    """A file in the cache whose bytes hash to the prefix its name promises is read (weights-only) and fits."""
    torchvision = import_torchvision()
    model = torchvision.models.alexnet(weights=None)
    cached = alexnet_file(hub_home)
    cached.parent.mkdir(parents=True)
    torch.save(model.state_dict(), cached)
    with pytest.raises(ConfigError, match="not the published file"):  # our file is not torchvision's
        torchvision_state_dict("alexnet", "IMAGENET1K_V1")
    state = read_state_dict(cached, sha256_prefix=file_sha256(cached)[:8])
    assert state.keys() == model.state_dict().keys()
