// The strongest paths from a neuron group (or every group, or the groups of one neuron) up to the class logit:
// chains of FEEDS edges child -> parent ending at the root group of ONE complete run of the class (the run is
// $run_id when given, else the latest complete run of the class, as in circuit_edges.cypher).
// Ranking convention: edge weights are signed (an inhibiting child has w < 0), so a path's strength is the
// product of |w| over its edges, equivalently the sum of log|w| (log_strength); paths are ranked by it,
// strongest first (ties by group ids). `product` keeps the sign: > 0 the path pushes the logit up, < 0 down.
// $min_weight prunes paths holding any edge with |w| < $min_weight (0.0 keeps every path).
// This file is the search's edge read: one row holding the run, its root group, the source groups, $limit
// (max_paths) and the FEEDS edges of the run with |w| >= $min_weight. `run_query` (and so the CLI's
// `query bias_paths` and fetch_bias_paths) turns that row into the paths below with an exact k-best search in
// Python (neurflow_graph/query/paths.py): enumerating every path does not scale (10^10 in a dense 11-layer
// circuit).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null;
//   $source — where paths start: null (every non-root group), a NeuronGroup node id "{run_id}/{group_id}", a
//   group id within the run "conv2/g4", or a Neuron id "digits/conv2/14" (every group of the run it belongs
//   to); $min_weight — float >= 0; $limit — int, paths returned.
// Defaults: $run_id = null, $source = null, $min_weight = 0.0, $limit = 20
// Writes: false
// Returns: run directly, this file gives one row (none when nothing matches): run_id, root (the root group id),
//   sources (group ids where paths may start), max_paths ($limit), edges (a list of [child, parent, weight]).
//   Through run_query (the query's answer): one row per path, strongest first: run_id, source (group id where the path
//   starts), groups (group ids from the source up to the root), weights (signed, one per edge), product
//   (signed), strength (product of |w|), log_strength (sum of log|w|), hops.
// Example: run_cypher(driver, db, "bias_paths", class_id="digits/3", run_id=None, source="digits/conv2/14",
//   min_weight=0.0, limit=5)
//   -> [{"run_id": "digits-c3-3520059de8", "root": "fc/g0", "sources": ["conv2/g2"], "max_paths": 5,
//        "edges": [["conv2/g2", "conv3/g0", 0.32], …]}]
//   run_query(conn, "bias_paths", class_id="digits/3", source="digits/conv2/14", limit=5)
//   -> [{"source": "conv2/g2", "groups": ["conv2/g2", "conv3/g0", "fc/g0"], "weights": [0.32, 0.73],
//        "product": 0.23, "strength": 0.23, "log_strength": -1.47, "hops": 2, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
WITH c, r
MATCH (root:NeuronGroup)-[:LOGIT_OF]->(c)
WHERE root.run_id = r.id
MATCH (g:NeuronGroup)-[:IN_RUN]->(r)
WHERE g.is_root = false
  AND ($source IS NULL OR g.id = $source OR g.group_id = $source
       OR EXISTS { MATCH (:Neuron {id: $source})-[:MEMBER_OF]->(g) })
WITH r, root, collect(g.group_id) AS sources
MATCH (parent:NeuronGroup)-[:IN_RUN]->(r)
MATCH (child:NeuronGroup)-[f:FEEDS]->(parent)
WHERE abs(f.weight) >= $min_weight
RETURN r.id AS run_id, root.group_id AS root, sources, $limit AS max_paths,
  collect([child.group_id, parent.group_id, f.weight]) AS edges
