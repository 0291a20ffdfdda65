"""A missing optional package is one `MissingDependency` (an ImportError too) naming the extra to install."""

from __future__ import annotations

import sys

import pytest

from neurflow_graph.errors import MissingDependency, NeurflowGraphError


def _absent(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import MODULE` fail as it does when the package is not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurflow_graph.distributed import import_ray

    _absent(monkeypatch, "ray")
    with pytest.raises(MissingDependency, match=r"pip install 'neurflow-graph\[ray\]'"):
        import_ray()


def test_missing_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurflow_graph.evaluation.plots import _figure

    _absent(monkeypatch, "matplotlib.backends.backend_agg", "matplotlib.figure")
    with pytest.raises(MissingDependency, match=r"pip install 'neurflow-graph\[plots\]'"):
        _figure()


def test_missing_efficientnet(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurflow_graph.models.presets import get_preset

    _absent(monkeypatch, "efficientnet_lite_pytorch")
    with pytest.raises(MissingDependency, match=r"pip install 'neurflow-graph\[efficientnet\]'"):
        get_preset("efficientnet-lite0").build(weights=None)


def test_missing_scikit_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurflow_graph.models.images import skimage_images

    _absent(monkeypatch, "skimage", "skimage.data")
    with pytest.raises(MissingDependency, match=r"pip install 'neurflow-graph\[images\]'"):
        skimage_images(["chelsea"], 32)


def test_missing_dependency_is_an_import_error_and_the_package_error() -> None:
    assert issubclass(MissingDependency, ImportError) and issubclass(MissingDependency, NeurflowGraphError)
