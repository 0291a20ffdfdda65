"""Result tables: rows appended column by column, read back as NumPy columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def extend(rows: dict[str, list], columns: Sequence[str], n: int, values: dict) -> None:
    """Append ``n`` rows: array values give one entry per row, scalars are repeated."""
    for key in columns:
        value = values[key]
        rows[key].extend(np.asarray(value).tolist() if np.ndim(value) else [value] * n)


def columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Every column of ``table`` as a NumPy array."""
    return {name: np.asarray(table.column(name).to_pylist()) for name in table.column_names}


def run_columns(subject) -> dict:
    """The columns that name a result row's run: run_id, model, class_index."""
    return {"run_id": subject.run_id, "model": subject.spec.name, "class_index": subject.class_index}
