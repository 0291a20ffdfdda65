"""Figures of the three experiments (PNG, Agg canvas, no pyplot state): paper Figures 4, 5 and 6.

matplotlib is an optional dependency (``neurflow-graph[plots]``), imported when a figure is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MissingDependency

_TAU_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
_BLUES = ("#1f4e9c", "#4a7fd0", "#8db3ec", "#c6dbf7")
_LABELS = {"core": "core neurons", "random": "random (±1 sd)", "l2": "L2 weights"}
_PINKS = ("#c2185b", "#e5689a", "#f4a6c4", "#fad3e3")


def _figure(**kwargs):
    """A matplotlib Figure on an Agg canvas (no pyplot, no global backend state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("figures need matplotlib; pip install 'neurflow-graph[plots]'") from exc
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_optimality(layers: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Bars per layer and tau: mean loss difference (random - core) with its 99% CI, and share of random wins."""
    fig = _figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    names = list(dict.fromkeys(f"{r['layer']}←{r['lower']}" for r in layers))
    taus = sorted({r["tau"] for r in layers})
    width = 0.8 / max(1, len(taus))
    for j, tau in enumerate(taus):
        rows = {f"{r['layer']}←{r['lower']}": r for r in layers if r["tau"] == tau}
        x = np.array([i for i, n in enumerate(names) if n in rows]) + (j - (len(taus) - 1) / 2) * width
        mine = [rows[n] for n in names if n in rows]
        mean = np.array([r["mean_diff"] if r["mean_diff"] is not None else np.nan for r in mine], dtype=float)
        low = np.array([r["ci99_low"] if r["ci99_low"] is not None else np.nan for r in mine], dtype=float)
        high = np.array([r["ci99_high"] if r["ci99_high"] is not None else np.nan for r in mine], dtype=float)
        err = np.nan_to_num(np.vstack([mean - low, high - mean]))
        left.bar(x, mean, width, yerr=err, capsize=3, color=_BLUES[j % len(_BLUES)], label=f"tau={tau}")
        right.bar(x, [r["share_random_better"] for r in mine], width, color=_PINKS[j % len(_PINKS)],
                  label=f"tau={tau}")
    for ax, label in ((left, "mean L(random) - L(core), 99% CI"), (right, "share of random sets with lower loss")):
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_ylabel(label)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.legend(fontsize=8)
    right.set_ylim(0, 1)
    left.set_title("positive: core set destroys the concept more")
    right.set_title("random set beats core set")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_fidelity(layers: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Class accuracy vs layer, mask/retain × single/cumulative: core (solid), random (dashed, ±1 sd), L2 (dotted)."""
    fig = _figure(figsize=(11, 8))
    axes = fig.subplots(2, 2, sharey=True)
    taus = sorted({r["tau"] for r in layers})
    names = {r["layer_index"]: r["layer"] for r in layers}
    ticks = sorted(names)
    styles = {"core": ("-", "o"), "random": ("--", None), "l2": (":", "s")}
    for i, scope in enumerate(("single", "cumulative")):
        for j, mode in enumerate(("mask", "retain")):
            ax = axes[i, j]
            for t, tau in enumerate(taus):
                color = _TAU_COLORS[t % len(_TAU_COLORS)]
                for method, (line, marker) in styles.items():
                    rows = sorted((r for r in layers if (r["tau"], r["scope"], r["mode"], r["method"])
                                   == (tau, scope, mode, method)), key=lambda r: r["layer_index"])
                    if not rows:
                        continue
                    x = [r["layer_index"] for r in rows]
                    y = np.array([r["accuracy"] for r in rows])
                    ax.plot(x, y, line, marker=marker, color=color, label=f"{_LABELS[method]}, tau={tau}")
                    if method == "random":
                        sd = np.array([r["accuracy_sd"] for r in rows])
                        ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.08)
            ax.set_xticks(ticks, [names[k] for k in ticks])
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{mode} ({'one layer' if scope == 'single' else 'from the logit down to the layer'})")
            ax.set_ylabel("share still predicted as the class")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(taus), fontsize=8, bbox_to_anchor=(0.5, -0.06))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_weights(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Correlation of summed |IG| and concept change (1 - overlap) vs set size, one line per layer."""
    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    layers = list(dict.fromkeys((r["layer"], r["lower"]) for r in rows))
    for n, (layer, lower) in enumerate(layers):
        mine = sorted((r for r in rows if (r["layer"], r["lower"]) == (layer, lower)), key=lambda r: r["size"])
        color = _TAU_COLORS[n % len(_TAU_COLORS)]
        sizes = [r["size"] for r in mine]
        # (matplotlib drops legend labels that start with "_", as EfficientNet's layer names do)
        ax.plot(sizes, [_num(r["pearson"]) for r in mine], "-", color=color, label=f"Pearson, {layer}←{lower}")
        ax.plot(sizes, [_num(r["spearman"]) for r in mine], ":", color=color, label=f"Spearman, {layer}←{lower}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("size of the random neuron set")
    ax.set_ylabel("correlation (positive = larger importance,\nlarger concept change)")
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _num(value) -> float:
    return float("nan") if value is None else float(value)
