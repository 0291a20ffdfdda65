"""Importance of every lower-layer neuron for chosen targets: the engine's core-ranking score (eq. 2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neurflow_graph.engine.attribution import IntegratedGradients
from neurflow_graph.engine.meta import RunMeta

from .knockout import Knockout


def importance(knock: Knockout, targets: np.ndarray, concepts: np.ndarray, n_steps: int = 50,
               method: str = "gausslegendre", progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Mean |IG| over each target's concept of every lower-layer neuron (T×C), as the engine ranks core neurons.

    ``concepts`` is T×k patch ids (each target's V_a). Uses the knockout's cached lower-layer maps.
    """
    ig = IntegratedGradients(n_steps=int(n_steps), method=method, precision="fp32", device=knock.device)
    if knock.skip is not None:  # IG relative to each patch's own zero-lower baseline, as the engine runs it
        knock.skip.relative = True
    try:
        attribution = ig.attribute(knock.bridge, knock.bound, np.asarray(targets), np.asarray(concepts),
                                   progress=progress)
    finally:
        if knock.skip is not None:
            knock.skip.relative = False
    return np.abs(attribution.scores).mean(axis=1)


def ig_steps(meta: RunMeta, transition) -> int:
    """The integrated-gradients step count the run used for ``transition`` (50 when unknown)."""
    steps = meta.params.n_steps
    return int(transition.n_steps) if transition.n_steps else (steps if isinstance(steps, int) else 50)
