"""Concept labels for neuron groups and their relations, from a multimodal LLM (paper section 5.2, appendix G)."""

from neurflow_graph.labels.client import (
    AnswerError,
    ChatClient,
    EndpointNotConfigured,
    LabelError,
    LLMError,
    LLMSettings,
    RetryPolicy,
)
from neurflow_graph.labels.grid import exemplar_grid, grid_size
from neurflow_graph.labels.labeler import ItemResult, LabelReport, group_key, label_circuit, relation_key, top_edges
from neurflow_graph.labels.prompts import (
    LABEL_PROMPT_VERSION,
    RELATION_PROMPT_VERSION,
    LabelAnswer,
    RelationAnswer,
    label_messages,
    parse_label,
    parse_relation,
    relation_messages,
)

__all__ = [
    "LABEL_PROMPT_VERSION", "RELATION_PROMPT_VERSION", "AnswerError", "ChatClient", "EndpointNotConfigured",
    "ItemResult", "LLMError", "LLMSettings", "LabelAnswer", "LabelError", "LabelReport", "RelationAnswer",
    "RetryPolicy", "exemplar_grid", "grid_size", "group_key", "label_circuit", "label_messages", "parse_label",
    "parse_relation", "relation_key", "relation_messages", "top_edges",
]
