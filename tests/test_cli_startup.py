"""The command line answers at once: `--help`, `db`, `query` and `show` import neither torch nor scikit-learn,
and the lazy package facade still gives every name it re-exports (each check in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "sklearn")

def fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=300).stdout.strip()


def test_importing_the_command_line_imports_no_torch() -> None:
    assert fresh("import neurflow_graph.cli.main, sys; print('torch' in sys.modules)") == "False"
    assert fresh(f"import neurflow_graph, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))") == "[]"


def test_the_run_record_imports_no_torch() -> None:
    """`RunMeta` is the run record of the store and the query layer, which start without torch."""
    assert fresh("import neurflow_graph.engine.meta, sys; print('torch' in sys.modules)") == "False"
    assert fresh("import neurflow_graph.records, neurflow_graph.query.fetch, sys; "
                 f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))") == "[]"


@pytest.mark.parametrize("args", [
    ("--help",), ("db", "--help"), ("db", "path"), ("query", "--list"), ("query", "--help"), ("show", "--help"),
    ("debug", "--help"), ("label", "--help"), ("evaluate", "--help"), ("load", "--help"),
])
def test_cheap_commands_import_no_torch(args: tuple[str, ...], tmp_path, command_imports) -> None:
    done, loaded = command_imports(*args, "--data-dir", str(tmp_path)) if args == ("db", "path") \
        else command_imports(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    assert loaded == []


def test_computing_commands_import_the_engine_when_they_run(tmp_path, command_imports) -> None:
    """`run --help` shows the library's choices (read from the torch-free `engine.params`, so no torch); a bad recipe
    fails before any import."""
    done, loaded = command_imports("run", "--help")
    assert done.returncode == 0 and "gausslegendre" in done.stdout and "auto|fp32" in done.stdout
    assert loaded == []
    missing = tmp_path / "missing.toml"
    done, loaded = command_imports("run", str(missing), "--out", str(tmp_path / "o"))
    assert done.returncode == 1 and f"recipe {missing} not found" in done.stderr


def test_the_facade_still_gives_every_name() -> None:
    import neurflow_graph

    for name in neurflow_graph.__all__:
        assert getattr(neurflow_graph, name) is not None, name
    assert set(neurflow_graph.__all__) <= set(dir(neurflow_graph))
    from neurflow_graph.engine.pipeline import Bundle

    assert neurflow_graph.Bundle is Bundle
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        neurflow_graph.not_a_name  # noqa: B018 - the attribute access is the test


def test_star_import_and_the_notebook_view_work_in_a_fresh_interpreter() -> None:
    """`from neurflow_graph import *` gives the names; a ClassCircuit shows as the `show` page in a notebook
    although nothing imported the renderer beforehand."""
    code = ("from neurflow_graph import *; import sys; "
            "from neurflow_graph.query.results import ClassCircuit; "
            "before = 'neurflow_graph.render.circuit' in sys.modules; "
            "c = ClassCircuit(class_id='digits/3', class_name='3', run_id='r', bundle_path=None, groups=(), "
            "edges=()); html = c._repr_html_(); "
            "print(before, NeurFlow.__name__, html.startswith('<iframe'))")
    assert fresh(code).split() == ["False", "NeurFlow", "True"]
