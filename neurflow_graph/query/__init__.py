"""The query layer: typed helpers over the `cypher/` query library, and the `query`, `show`, `debug` commands.

Every helper runs query files by name through one choke point (`run_query`); see docs/queries.md.
"""

from neurflow_graph.query.fetch import (
    bundle_file,
    fetch_bias_paths,
    fetch_class_circuit,
    fetch_classes,
    fetch_exemplars,
    fetch_interventions,
    fetch_layer_groups,
    fetch_neuron_roles,
    fetch_run_comparison,
    fetch_run_info,
    fetch_shared_groups,
    fetch_shared_neurons,
    resolve_class,
)
from neurflow_graph.query.library import QueryInfo, Runner, query_info, read_queries, run_query, with_defaults
from neurflow_graph.query.results import (
    BiasPath,
    CircuitEdge,
    CircuitGroup,
    ClassCircuit,
    ClassInfo,
    EdgeChange,
    Exemplar,
    GroupMatch,
    Intervention,
    LayerGroup,
    NeuronRole,
    Records,
    RunComparison,
    RunInfo,
    SharedGroup,
    SharedNeuron,
    Tabular,
    to_table,
)
from neurflow_graph.query.table import format_table

__all__ = [
    "BiasPath", "CircuitEdge", "CircuitGroup", "ClassCircuit", "ClassInfo", "EdgeChange", "Exemplar", "GroupMatch",
    "Intervention", "LayerGroup", "NeuronRole", "QueryInfo", "RunComparison", "RunInfo", "Runner", "SharedGroup",
    "SharedNeuron", "bundle_file", "fetch_bias_paths", "fetch_class_circuit", "fetch_classes", "fetch_exemplars",
    "fetch_interventions", "fetch_layer_groups", "fetch_neuron_roles", "fetch_run_comparison", "fetch_run_info",
    "fetch_shared_groups", "fetch_shared_neurons", "format_table", "query_info", "read_queries", "resolve_class",
    "run_query", "to_table", "with_defaults",
    "Records", "Tabular",
]
