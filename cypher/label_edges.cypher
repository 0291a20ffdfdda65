// The FEEDS edges between the neuron groups of a run, with the relation stored on them (if any): the
// edges `label` may explain ("how the child group's feature builds the parent's").
// Parameters: $run_id — run id.
// Writes: false
// Returns: one row per edge: child, parent (NeuronGroup node ids), child_group_id, parent_group_id, weight,
//   relation, relation_model, relation_prompt_version, relation_key (null when not explained).
// Example: run_cypher(driver, db, "label_edges", run_id="digits-c3-5f2a9c1e")
//   -> [{"child": "digits-c3-5f2a9c1e/conv2/g4", "parent": "digits-c3-5f2a9c1e/conv3/g0", "weight": 11.7, …}]
MATCH (c:NeuronGroup {run_id: $run_id})-[f:FEEDS]->(p:NeuronGroup)
RETURN c.id AS child, p.id AS parent, c.group_id AS child_group_id, p.group_id AS parent_group_id,
  f.weight AS weight, f.relation AS relation, f.relation_model AS relation_model,
  f.relation_prompt_version AS relation_prompt_version, f.relation_key AS relation_key
ORDER BY parent, weight DESC, child
