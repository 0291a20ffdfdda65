"""`neurflow-graph serve`: a read-only web explorer of the circuits in the graph store.

A Starlette app (`app.create_app`) under uvicorn (`server.serve`), Jinja2 templates and a little plain
JavaScript, all served by the app itself (no CDN, no network). It reads only through the query layer
(`query/` and `cypher/`) and has no write path. Its packages are the optional extra `serve`.
"""

from __future__ import annotations

import importlib.util

from neurflow_graph.errors import MissingDependency

PACKAGES = ("starlette", "uvicorn", "jinja2")
"""What the `serve` extra installs (pyproject.toml)."""


def require_extra(packages: tuple[str, ...] = PACKAGES) -> None:
    """Raise MissingDependency (one line naming the extra) when a package of the `serve` extra is missing."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(f"neurflow-graph serve needs {', '.join(missing)}, which "
                                f"{'is' if len(missing) == 1 else 'are'} not installed; "
                                "pip install 'neurflow-graph[serve]'")
