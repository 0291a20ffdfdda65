// The circuit of a class: the FEEDS edges between the neuron groups of every complete run of that class,
// from the root group (the class logit, LOGIT_OF the class) down to the lowest layer. For one run (the latest
// complete one unless named), with input ranks and top-N pruning, use circuit_edges.cypher and circuit_groups.cypher.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3".
// Writes: false
// Returns: one row per edge: run_id, child, parent (group ids within the run), child_layer, parent_layer,
//   child_layer_index, parent_layer_index, weight, n_edges.
// Example: run_cypher(driver, db, "circuit_of_class", class_id="digits/3")
//   -> [{"run_id": "digits-c3-5f2a9c1e", "child": "conv3/g1", "parent": "fc/g0", "weight": 0.42, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (root:NeuronGroup)-[:LOGIT_OF]->(c)
MATCH (root)-[:IN_RUN]->(r:Run)
WHERE r.complete = true
MATCH (child:NeuronGroup)-[f:FEEDS]->(parent:NeuronGroup)
WHERE child.run_id = r.id
RETURN r.id AS run_id, child.group_id AS child, parent.group_id AS parent, child.layer AS child_layer,
  parent.layer AS parent_layer, child.layer_index AS child_layer_index,
  parent.layer_index AS parent_layer_index, f.weight AS weight, f.n_edges AS n_edges
ORDER BY run_id, parent_layer_index, parent, weight DESC
