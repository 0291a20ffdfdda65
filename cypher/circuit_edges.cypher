// The circuit of a class, edge by edge: the FEEDS edges between the neuron groups of ONE complete run of the
// class, layer by layer from the logit down, each parent's inputs ranked by |weight| (strongest first).
// The run is $run_id when given, else the latest complete run of the class (newest created_at, then newest
// completed_at, then run id). With $top_n, only the top-N inputs of each parent group are kept (pruning).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null
//   for the latest complete one; $top_n — int, inputs kept per parent group, or null for all.
// Defaults: $run_id = null, $top_n = null
// Returns: one row per edge, by parent layer, parent, rank: run_id, child, parent (group ids within the run),
//   child_layer, parent_layer, child_layer_index, parent_layer_index, weight (signed sum of hyper-edge
//   weights), n_edges, rank (0 = the parent's strongest input by |weight|), relation (the FEEDS `relation`
//   property written by concept labelling, or null). No row when the class has no complete run.
// Example: run(driver, db, "circuit_edges", class_id="digits/3", run_id=None, top_n=2)
//   -> [{"run_id": "digits-c3-3520059de8", "child": "conv3/g0", "parent": "fc/g0", "weight": 0.73, "rank": 0, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND ($run_id IS NULL OR r.id = $run_id)
WITH r
ORDER BY r.created_at DESC, r.completed_at DESC, r.id DESC
LIMIT 1
MATCH (parent:NeuronGroup)-[:IN_RUN]->(r)
MATCH (child:NeuronGroup)-[f:FEEDS]->(parent)
WITH r, parent, child, f
ORDER BY abs(f.weight) DESC, child.group_id
WITH r, parent, collect({child: child.group_id, layer: child.layer, layer_index: child.layer_index,
  weight: f.weight, n_edges: f.n_edges, relation: f.relation}) AS inputs
UNWIND range(0, size(inputs) - 1) AS rank
WITH r, parent, inputs[rank] AS input, rank
WHERE $top_n IS NULL OR rank < $top_n
RETURN r.id AS run_id, input.child AS child, parent.group_id AS parent, input.layer AS child_layer,
  parent.layer AS parent_layer, input.layer_index AS child_layer_index, parent.layer_index AS parent_layer_index,
  input.weight AS weight, input.n_edges AS n_edges, rank, input.relation AS relation
ORDER BY parent_layer_index, parent, rank
