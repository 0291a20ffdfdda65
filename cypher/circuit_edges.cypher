// The circuit of a class, edge by edge: the FEEDS edges between the neuron groups of ONE complete run of the
// class, layer by layer from the logit down, each parent's inputs ranked by |weight| (strongest first).
// The run is $run_id when given, else the latest complete run of the class (Run.latest, which the writer keeps:
// see write_class_latest.cypher). With $top_n, only the top-N inputs of each parent group are kept (pruning).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null
//   for the latest complete one; $top_n — int, inputs kept per parent group, or null for all.
// Defaults: $run_id = null, $top_n = null
// Writes: false
// This file is the edge read: one row holding the run, $top_n and the run's FEEDS edges; `run_query` (and so the
// CLI's `query circuit_edges` and fetch_class_circuit) ranks them in Python (neurflow_graph/query/library.py):
// ranking and one row per edge in Cypher cost most of the circuit's time at 1000 classes.
// Returns: run directly, one row (none when the class has no complete run): run_id, top_n, edges (a list of
//   [child, parent, child_layer, parent_layer, child_layer_index, parent_layer_index, weight, n_edges, relation]).
//   Through run_query (the query's answer): one row per edge, by parent layer, parent, rank: run_id, child, parent
//   (group ids within the run), child_layer, parent_layer, child_layer_index, parent_layer_index, weight (signed
//   sum of hyper-edge weights), n_edges, rank (0 = the parent's strongest input by |weight|, ties by child id),
//   relation (the FEEDS `relation` property written by concept labelling, or null).
// Example: run_cypher(driver, db, "circuit_edges", class_id="digits/3", run_id=None, top_n=2)
//   -> [{"run_id": "digits-c3-3520059de8", "top_n": 2, "edges": [["conv3/g0", "fc/g0", "conv3", "fc", 1, 0, 0.73,
//        12, None], …]}]
//   run_query(conn, "circuit_edges", class_id="digits/3", top_n=2)
//   -> [{"run_id": "digits-c3-3520059de8", "child": "conv3/g0", "parent": "fc/g0", "weight": 0.73, "rank": 0, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
MATCH (parent:NeuronGroup)-[:IN_RUN]->(r)
MATCH (child:NeuronGroup)-[f:FEEDS]->(parent)
RETURN r.id AS run_id, $top_n AS top_n,
  collect([child.group_id, parent.group_id, child.layer, parent.layer, child.layer_index, parent.layer_index, f.weight,
    f.n_edges, f.relation]) AS edges
