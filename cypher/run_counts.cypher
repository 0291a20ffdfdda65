// Counts, in the graph itself, what a run owns: its nodes and the relationships among them.
// Parameters: $run_id — run id.
// Writes: false
// Returns: run_id, complete, neurons (IN_CIRCUIT), patches, semantic_groups, neuron_groups, hyperedges
//   (DRIVES), group_edges (FEEDS), memberships (MEMBER_OF), in_group (IN_GROUP), exemplars (EXEMPLAR),
//   has_semantic_group (HAS_SEMANTIC_GROUP), logit_of (LOGIT_OF); no row when the run is not stored.
// Example: run_cypher(driver, db, "run_counts", run_id="digits-c3-5f2a9c1e") -> [{"neurons": 40, "hyperedges": 310, …}]
MATCH (r:Run {id: $run_id})
RETURN r.id AS run_id, r.complete AS complete,
  COUNT { MATCH (:Neuron)-[:IN_CIRCUIT]->(r) } AS neurons,
  COUNT { MATCH (p:Patch) WHERE p.run_id = $run_id } AS patches,
  COUNT { MATCH (s:SemanticGroup) WHERE s.run_id = $run_id } AS semantic_groups,
  COUNT { MATCH (g:NeuronGroup) WHERE g.run_id = $run_id } AS neuron_groups,
  COUNT { MATCH (:Neuron)-[:DRIVES]->(s:SemanticGroup) WHERE s.run_id = $run_id } AS hyperedges,
  COUNT { MATCH (:NeuronGroup)-[:FEEDS]->(g:NeuronGroup) WHERE g.run_id = $run_id } AS group_edges,
  COUNT { MATCH (:Neuron)-[:MEMBER_OF]->(g:NeuronGroup) WHERE g.run_id = $run_id } AS memberships,
  COUNT { MATCH (:SemanticGroup)-[:IN_GROUP]->(g:NeuronGroup) WHERE g.run_id = $run_id } AS in_group,
  COUNT { MATCH (g:NeuronGroup)-[:EXEMPLAR]->(:Patch) WHERE g.run_id = $run_id } AS exemplars,
  COUNT { MATCH (:Neuron)-[:HAS_SEMANTIC_GROUP]->(s:SemanticGroup) WHERE s.run_id = $run_id }
    AS has_semantic_group,
  COUNT { MATCH (g:NeuronGroup)-[:LOGIT_OF]->(:Class) WHERE g.run_id = $run_id } AS logit_of
