"""The paper's evaluation (section 4): optimality and fidelity of core neurons, fidelity of importance scores.

Each experiment takes a ``Subject`` (one run: model, class images, patches, circuit) and returns a
table of raw rows; ``summarize_*`` and ``headline_*`` turn rows into per-layer summaries and a few
scalars; ``run_experiment`` does all of it over several runs and writes JSON, Parquet and a PNG.
The ``evaluate`` click group lives in ``neurflow_graph.cli.evaluation``.
"""

from .experiments import KINDS, EvaluationOutput, run_experiment
from .fidelity import circuit_neurons, evaluate_fidelity, headline_fidelity, l2_circuit_neurons, summarize_fidelity
from .importance import importance
from .knockout import Knockout, loss, overlap, top_k
from .l2 import weight_norms
from .masking import keep_mask, predict_masked
from .optimality import evaluate_optimality, headline_optimality, summarize_optimality
from .prune import prune
from .record import evaluation_properties, evaluation_record, store_evaluation, write_results
from .subject import Subject, preset_spec, subject_from_bundle
from .weights import SIGN_CONVENTION, evaluate_weights, headline_weights, summarize_weights, weight_correlations

__all__ = [
    "KINDS", "SIGN_CONVENTION", "EvaluationOutput", "Knockout", "Subject", "circuit_neurons", "evaluate_fidelity",
    "evaluate_optimality", "evaluate_weights", "evaluation_properties", "evaluation_record", "headline_fidelity",
    "headline_optimality", "headline_weights", "importance", "keep_mask", "l2_circuit_neurons", "loss", "overlap",
    "predict_masked", "preset_spec", "prune", "run_experiment", "store_evaluation", "subject_from_bundle",
    "summarize_fidelity", "summarize_optimality", "summarize_weights", "top_k",
    "weight_correlations", "weight_norms", "write_results",
]
