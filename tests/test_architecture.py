"""The package's layers (docs/architecture.md): imports only go down, and each idea has one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurflow_graph"

LAYERS: list[tuple[str, ...]] = [
    ("_version", "_compat", "errors", "ids"),
    ("engine",),
    ("bundle",),
    ("records",),
    ("store",),
    ("query",),
    ("recipes",),
    ("evaluation",),
    ("debugging",),
    ("render",),
    ("labels",),
    ("jobs",),
    ("distributed",),
    ("serve",),
    ("cli",),
]
"""Bottom to top: a module may import from its own layer and the ones below, never above."""
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _component(module: str) -> str | None:
    """`neurflow_graph.engine.layers` -> `engine`; the package root itself (the facade) has none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "neurflow_graph" else None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in `path`, at any depth (lazy imports too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "neurflow_graph":  # from pkg import submodule
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, mod) for line, mod in found if mod.startswith("neurflow_graph.")]


def test_every_module_belongs_to_a_layer() -> None:
    unknown = {_component(_module_name(p)) for p in _modules()} - set(RANK) - {None}
    assert not unknown, f"add these to LAYERS in tests/test_architecture.py: {sorted(unknown)}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in _modules():
        here = _component(_module_name(path))
        if here is None:  # neurflow_graph/__init__.py: the facade re-exports every layer
            continue
        for line, target in _imports(path):
            there = _component(target)
            if there is not None and RANK[there] > RANK[here]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize(("needle", "home"), [
    (re.compile(r"""rsplit\(\s*["'](/|#s)["']"""), "ids.py"),
    (re.compile(r"^def (resolve_class)\b", re.M), "records.py"),
    (re.compile(r"^def (slug|_slug|\w+_slug)\b", re.M), "ids.py"),
    (re.compile(r"^__version__ = ", re.M), "_version.py"),
])
def test_one_home(needle: re.Pattern[str], home: str) -> None:
    """Ids are parsed, classes resolved, names slugged and the version set in exactly one module."""
    holders = [str(p.relative_to(PACKAGE)) for p in _modules() if needle.search(p.read_text())]
    assert holders == [home]


def test_one_latest_complete_run_rule() -> None:
    """A class's latest complete run is chosen once (the writer's `latest_run`, flagged as `Run.latest`);
    no query picks a run by ordering runs and keeping the first."""
    cypher = PACKAGE.parent / "cypher"
    picking = re.compile(r"ORDER BY[^\n]*created_at[^\n]*\n\s*LIMIT 1", re.I)
    assert [p.name for p in sorted(cypher.glob("*.cypher")) if picking.search(p.read_text())] == []
    definers = [str(p.relative_to(PACKAGE)) for p in _modules() if re.search(r"^def latest_run\b", p.read_text(), re.M)]
    assert definers == ["store/writer.py"]
    readers = [p.name for p in cypher.glob("*.cypher") if "latest = true" in p.read_text()]
    assert len(readers) >= 5, readers  # circuit, bias paths, shared groups, layer groups, classes … read the flag
