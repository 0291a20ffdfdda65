// Links a run's root neuron group (the class logit) to its Class: (root:NeuronGroup)-[:LOGIT_OF]->(:Class).
// Parameters: $run_id — run id (kept on the relationship); $group_id — the root group's node id
//   "{run_id}/{logit_layer}/g0"; $class_id — "{model}/{class_index}".
// Writes: true
// Returns: written (1, or 0 when either node is missing).
// Example: run_cypher(driver, db, "write_logit_of", run_id="digits-c3-5f2a9c1e",
//   group_id="digits-c3-5f2a9c1e/fc/g0", class_id="digits/3")
MATCH (g:NeuronGroup {id: $group_id})
MATCH (c:Class {id: $class_id})
CREATE (g)-[:LOGIT_OF {run_id: $run_id}]->(c)
RETURN count(*) AS written
