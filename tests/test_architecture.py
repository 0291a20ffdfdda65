"""The package's layers (docs/architecture.md): imports only go down, and each idea has one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurflow_graph"

LAYERS: list[tuple[str, ...]] = [
    ("_version", "_compat", "_lazy", "errors", "ids"),
    ("engine",),
    ("models",),
    ("bundle",),
    ("records",),
    ("store",),
    ("query",),
    ("recipes",),
    ("image_sources",),
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


_MODULE_NAMES = {_module_name(p) for p in _modules()}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in `path`, at any depth (lazy imports too)."""
    return _imports_in(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_in(source: str, name: str, is_package: bool, modules: set[str] = _MODULE_NAMES) -> list[tuple[int, str]]:
    package = name if is_package else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself
            found += [(node.lineno, f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
                      for alias in node.names]
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


def _import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth); `sources` maps a module to (source, is_package).
    The facade `neurflow_graph/__init__.py` is left out: it re-exports every layer."""
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for here, (source, is_package) in sources.items():
        if here == "neurflow_graph":
            continue
        targets = set()
        for _line, target in _imports_in(source, here, is_package, modules):
            while target not in modules and "." in target:  # `from pkg.mod import name` -> pkg.mod
                target = target.rsplit(".", 1)[0]
            if target not in (here, "neurflow_graph"):
                targets.add(target)
        graph[here] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    import networkx as nx

    return sorted(sorted(c) for c in nx.simple_cycles(nx.DiGraph([(a, b) for a in graph for b in graph[a]])))


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or around a loop, lazily or not (so within a layer, since
    imports only go down): a cycle hidden by a lazy import is still one idea split across two modules."""
    sources = {_module_name(p): (p.read_text(), p.name == "__init__.py") for p in _modules()}
    cycles = _cycles(_import_graph(sources))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_sees_lazy_and_relative_imports() -> None:
    sources = {
        "neurflow_graph.engine": ("", True),
        "neurflow_graph.engine.a": ("def f():\n    from neurflow_graph.engine.b import g\n", False),
        "neurflow_graph.engine.b": ("from . import c\n", False),
        "neurflow_graph.engine.c": ("def h():\n    from neurflow_graph.engine import a\n", False),
        "neurflow_graph.engine.d": ("from neurflow_graph.engine.a import f\n", False),
    }
    assert _cycles(_import_graph(sources)) == [["neurflow_graph.engine.a", "neurflow_graph.engine.b",
                                                "neurflow_graph.engine.c"]]


_ID_SEPARATORS = ("/", "#s", "/g", "-c")
"""What joins the parts of an id (ids.py): `{model}/{index}`, `{neuron}#s{j}`, `{layer}/g{index}`,
`{model}-c{class}`."""


def _built_ids(source: str) -> list[int]:
    """Lines that build an id-shaped string: an f-string with no whitespace in its text (a token, not prose) that
    joins two values with an id separator (f"{run_id}/{group}"), or `x + "/" + y`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
            if any(ch.isspace() for ch in text):
                continue
            if parts and isinstance(parts[0], ast.Constant) and str(parts[0].value).startswith("/"):
                continue  # a URL path (the explorer's routes, e.g. f"/thumb/{run_id}/{file}"), not an id
            for left, mid, right in zip(parts, parts[1:], parts[2:], strict=False):
                if (isinstance(left, ast.FormattedValue) and isinstance(right, ast.FormattedValue)
                        and isinstance(mid, ast.Constant) and mid.value in _ID_SEPARATORS):
                    lines.append(node.lineno)
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant)
              and node.right.value in _ID_SEPARATORS):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_ids_are_built_only_in_ids_py() -> None:
    built = [f"{p.relative_to(PACKAGE)}:{line}" for p in _modules() if p != PACKAGE / "ids.py"
             for line in _built_ids(p.read_text())]
    assert not built, "ids built outside ids.py (use its functions):\n" + "\n".join(built)


@pytest.mark.parametrize(("source", "found"), [
    ('x = f"{run_id}/{group}"', True),
    ('u = f"/thumb/{run_id}/{relative}"', False),
    ('x = f"{model}-c{index}-{digest}"', True),
    ('x = f"{neuron}#s{j}"', True),
    ("x = run_id + '/' + group", True),
    ('x = f"set {A}/{B} to free ports"', False),  # prose naming two things is not an id
    ('x = f"{a}:{b}"', False),
])
def test_the_id_rule_tells_ids_from_prose(source: str, found: bool) -> None:
    assert bool(_built_ids(source)) is found


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
