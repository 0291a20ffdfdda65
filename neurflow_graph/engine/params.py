"""A run's parameters and identity, and the faithfulness stage's settings, without torch: what the run record
(`engine.meta.RunMeta`), recipes and the command line need to know about a run without computing one
(docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neurflow_graph.errors import ConfigError

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gausslegendre_geometric")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")  # fp32 is strict (no TF32) on CUDA; tf32 lets CUDA use TF32


@dataclass(frozen=True)
class NeurFlowParams:
    """Every parameter of a run (ALGORITHM.md defaults); validated on construction."""

    k: int = 50
    tau: int = 16
    n_steps: int | str = 50
    method: str = "gausslegendre"
    precision: str = "auto"
    tolerance: float | None = None
    granularities: tuple[float, ...] = (1.0, 0.5, 0.25)
    stride_ratio: float = 0.5
    max_semantic_groups: int = 5
    max_neuron_groups: int = 100
    n_exemplars: int = 8
    seed: int = 0
    batch_size: int = 64
    internal_batch_size: int | None = None
    memory_budget_mb: float | None = None
    """Working memory per IG pass; None: from the device (``devices.default_budget_mb``)."""
    device: str = "auto"

    def __post_init__(self):
        for name in ("k", "tau", "max_semantic_groups", "max_neuron_groups", "n_exemplars", "batch_size",
                     "internal_batch_size"):
            value = getattr(self, name)
            if name == "internal_batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.memory_budget_mb is not None and (isinstance(self.memory_budget_mb, bool)
                                                  or not isinstance(self.memory_budget_mb, (int, float))
                                                  or not self.memory_budget_mb > 0):
            raise ConfigError(f"memory_budget_mb must be a positive number of MB, got {self.memory_budget_mb!r}")
        if self.max_semantic_groups < 2:
            raise ConfigError(f"max_semantic_groups must be >= 2, got {self.max_semantic_groups}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.precision not in ("auto", *PRECISIONS):
            raise ConfigError(f"precision must be one of auto, {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.n_steps == "auto" and not (self.tolerance and self.tolerance > 0):
            raise ConfigError("n_steps 'auto' needs a positive tolerance (e.g. --tolerance 1e-3)")
        if self.n_steps != "auto" and (isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int)
                                       or self.n_steps < 2):
            raise ConfigError(f"n_steps must be an integer >= 2 or 'auto', got {self.n_steps!r}")
        object.__setattr__(self, "granularities", tuple(float(g) for g in self.granularities))


# Settings that change speed or memory, not results: two runs differing only in these share a run id.
NOT_IN_RUN_ID = ("device", "batch_size", "internal_batch_size", "memory_budget_mb")



def run_identity(model_name: str, provenance: dict, weights_digest: str, layers: Sequence[str], class_index: int,
                 image_sha256: Sequence[str], params: dict) -> dict:
    """Everything that decides a run's result, as the JSON-able dict its run id hashes.

    ``params`` are the run's parameters as run.json records them (precision resolved, input_size
    added); those in ``NOT_IN_RUN_ID`` are left out, every other one (a new one included) counts.
    """
    return {"model": {"name": model_name, **provenance}, "weights_sha256": weights_digest, "layers": list(layers),
            "class": int(class_index), "images": list(image_sha256),
            "params": {k: v for k, v in params.items() if k not in NOT_IN_RUN_ID}}


# The faithfulness stage (jobs.measure_faithfulness_stage) measures how far to trust a run's circuit; its settings
# decide what is measured about the circuit, not the circuit, so they are not part of the run id.
FAITHFULNESS_LEVELS = ("off", "layers", "groups")
"""``off``: not measured; ``layers``: per layer of the circuit; ``groups``: also per neuron group (as ``debug``)."""
DEFAULT_LEVEL = "layers"
DEFAULT_SETS = 10
DEFAULT_SEED = 0


@dataclass(frozen=True)
class FaithfulnessSettings:
    """What to measure: ``level`` (FAITHFULNESS_LEVELS), ``sets`` random sets per layer (>= 10), their ``seed``."""

    level: str = DEFAULT_LEVEL
    sets: int = DEFAULT_SETS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.level not in FAITHFULNESS_LEVELS:
            raise ConfigError(f"faithfulness must be one of {', '.join(FAITHFULNESS_LEVELS)}, got {self.level!r}")
        if isinstance(self.sets, bool) or not isinstance(self.sets, int) or self.sets < 10:
            raise ConfigError(f"faithfulness sets must be an integer >= 10 (random sets per layer), got {self.sets!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"faithfulness seed must be an integer >= 0, got {self.seed!r}")

    @property
    def on(self) -> bool:
        return self.level != "off"
