"""Small statistics shared by the experiments: random neuron sets, confidence intervals, row-wise correlations."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats


def random_sets(rng: np.random.Generator, width: int, size: int, n: int) -> np.ndarray:
    """``n`` random sets of ``size`` distinct neurons out of ``width`` (n×size, each row sorted).

    When there are at most ``n`` possible sets, every one of them is returned once instead.
    """
    if not 0 < size <= width:
        raise ValueError(f"size must be in 1..{width}, got {size}")
    if math.comb(width, size) <= n:
        return np.array(list(itertools.combinations(range(width), size)), dtype=np.int64)
    keys = rng.random((n, width))
    return np.sort(np.argsort(keys, axis=1)[:, :size], axis=1)


def mean_ci(values: np.ndarray, level: float = 0.99) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval at ``level`` (NaN bounds for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return mean, float(mean - half), float(mean + half)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` along the last axis; NaN where either is constant."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x, axis=-1, keepdims=True)
    y = np.asarray(y, dtype=np.float64) - np.mean(y, axis=-1, keepdims=True)
    denom = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(-1) / denom
    return np.where(denom > 1e-12, r, np.nan)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (average ranks for ties); NaN where either is constant."""
    return pearson_rows(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))


def groups(columns: dict[str, np.ndarray], keys: list[str]) -> dict[tuple, np.ndarray]:
    """Row indices of each distinct combination of ``keys`` (in first-seen order)."""
    out: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(np.asarray(columns[k]).tolist() for k in keys), strict=True)):
        out.setdefault(key, []).append(i)
    return {key: np.asarray(rows) for key, rows in out.items()}
