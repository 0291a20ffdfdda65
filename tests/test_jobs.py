"""The job API's class selection, and the one-line error when Ray is asked for but missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neurflow_graph.errors import ConfigError, MissingDependency
from neurflow_graph.jobs import select_classes
from neurflow_graph.recipes import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "ingest" / "digits.toml"


def test_classes_all_a_list_or_a_file(tmp_path):
    recipe = load_recipe(RECIPE)
    assert select_classes(recipe) == recipe.classes
    assert select_classes(recipe, "all") == tuple(str(i) for i in range(10))
    assert select_classes(recipe, " 1, 7 ,") == ("1", "7")
    listed = tmp_path / "classes.txt"
    listed.write_text("# digits to ingest\n3\n\n8  # the loopy one\n")
    assert select_classes(recipe, classes_file=listed) == ("3", "8")


@pytest.mark.parametrize("kwargs, says", [
    ({"classes": " , "}, "--classes is empty"),
    ({"classes_file": "/nonexistent/classes.txt"}, "cannot read it"),
    ({"classes": "1", "classes_file": "x"}, "not both"),
])
def test_bad_class_selections_are_one_line_errors(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        select_classes(load_recipe(RECIPE), **kwargs)


def test_ray_missing_is_a_one_line_error_naming_the_extra(monkeypatch):
    from neurflow_graph.distributed import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray sees
    with pytest.raises(MissingDependency, match=r"pip install 'neurflow-graph\[ray\]'"):
        import_ray()


def test_a_bundle_uri_is_refused_before_anything_starts():
    from neurflow_graph.distributed import ingest_on_ray

    with pytest.raises(ConfigError, match="shared filesystem path"):
        ingest_on_ray(load_recipe(RECIPE), None, bundles="s3://bucket/bundles")
