"""Query rows as a readable fixed-width text table (what `neurflow-graph query` prints)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def format_value(value: Any, width: int = 48) -> str:
    """One cell: floats to 4 significant digits, lists and maps compacted, long text cut with an ellipsis."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(format_value(v, width) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = json.dumps(value, default=str, sort_keys=True)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[Mapping[str, Any]], width: int = 48) -> str:
    """Rows as a text table with a header line; columns in first-seen order; `(no rows)` when empty."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[format_value(row.get(c), width) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
