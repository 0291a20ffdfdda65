"""The query layer: typed helpers over the `cypher/` query library, answering with `records` types.

Every helper runs query files by name through one choke point (`run_query`); see docs/queries.md.
"""

from neurflow_graph.query.fetch import (
    bundle_file,
    fetch_bias_paths,
    fetch_class,
    fetch_class_circuit,
    fetch_class_index,
    fetch_classes,
    fetch_evaluations,
    fetch_exemplars,
    fetch_faithfulness,
    fetch_faithfulness_classes,
    fetch_group,
    fetch_group_shares,
    fetch_interventions,
    fetch_layer_groups,
    fetch_neuron_patches,
    fetch_neuron_roles,
    fetch_run_comparison,
    fetch_run_info,
    fetch_shared_groups,
    fetch_shared_neurons,
)
from neurflow_graph.query.library import QueryInfo, Runner, query_info, read_queries, run_query, with_defaults
from neurflow_graph.query.results import (
    BiasPath,
    ClassCircuit,
    ClassFaithfulness,
    ClassSummary,
    ConceptPatch,
    EdgeChange,
    Evaluation,
    GroupDetail,
    GroupLink,
    GroupMatch,
    GroupShare,
    Intervention,
    LayerFaithfulness,
    NeuronRole,
    RunComparison,
    SharedGroup,
    SharedNeuron,
)
from neurflow_graph.query.table import format_table
from neurflow_graph.records import ClassRef, Edge, Exemplar, Group, Records, Run, Tabular, to_table

__all__ = [
    "ClassFaithfulness", "LayerFaithfulness", "fetch_faithfulness", "fetch_faithfulness_classes",
    "BiasPath", "ClassCircuit", "ClassRef", "ClassSummary", "ConceptPatch", "Edge", "EdgeChange", "Evaluation",
    "Exemplar", "Group", "GroupDetail", "GroupLink", "GroupMatch", "GroupShare",
    "Intervention", "NeuronRole", "QueryInfo", "Records", "Run", "RunComparison", "Runner", "SharedGroup",
    "SharedNeuron", "Tabular", "bundle_file", "fetch_bias_paths", "fetch_class", "fetch_class_circuit",
    "fetch_class_index", "fetch_classes", "fetch_evaluations", "fetch_exemplars", "fetch_group", "fetch_group_shares",
    "fetch_interventions", "fetch_layer_groups", "fetch_neuron_patches", "fetch_neuron_roles",
    "fetch_run_comparison", "fetch_run_info", "fetch_shared_groups", "fetch_shared_neurons", "format_table",
    "query_info", "read_queries", "run_query", "to_table", "with_defaults",
]
