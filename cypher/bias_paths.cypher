// The strongest paths from a neuron group (or every group, or the groups of one neuron) up to the class logit:
// chains of FEEDS edges child -> parent ending at the root group of ONE complete run of the class (the run is
// $run_id when given, else the latest complete run of the class, as in circuit_edges.cypher).
// Ranking convention: edge weights are signed (an inhibiting child has w < 0), so a path's strength is the
// product of |w| over its edges, equivalently the sum of log|w| (log_strength); paths are ranked by it,
// strongest first (ties by group ids). `product` keeps the sign: > 0 the path pushes the logit up, < 0 down.
// $min_weight prunes paths holding any edge with |w| < $min_weight (0.0 keeps every path).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null;
//   $source — where paths start: null (every non-root group), a NeuronGroup node id "{run_id}/{group_id}", a
//   group id within the run "conv2/g4", or a Neuron id "digits/conv2/14" (every group of the run it belongs
//   to); $min_weight — float >= 0; $limit — int, paths returned.
// Defaults: $run_id = null, $source = null, $min_weight = 0.0, $limit = 20
// Returns: one row per path, strongest first: run_id, source (group id where the path starts), groups (group ids
//   from the source up to the root), weights (signed, one per edge), product (signed), strength (product of
//   |w|), log_strength (sum of log|w|), hops.
// Example: run(driver, db, "bias_paths", class_id="digits/3", run_id=None, source="digits/conv2/14",
//   min_weight=0.0, limit=5)
//   -> [{"source": "conv2/g2", "groups": ["conv2/g2", "conv3/g0", "fc/g0"], "weights": [0.32, 0.73],
//        "product": 0.23, "strength": 0.23, "log_strength": -1.47, "hops": 2, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND ($run_id IS NULL OR r.id = $run_id)
WITH c, r
ORDER BY r.created_at DESC, r.completed_at DESC, r.id DESC
LIMIT 1
MATCH (root:NeuronGroup)-[:LOGIT_OF]->(c)
WHERE root.run_id = r.id
MATCH (g:NeuronGroup)
WHERE g.run_id = r.id AND g.is_root = false
  AND ($source IS NULL OR g.id = $source OR g.group_id = $source
       OR EXISTS { MATCH (:Neuron {id: $source})-[:MEMBER_OF]->(g) })
MATCH p = (g)-[:FEEDS*1..]->(root)
WHERE all(f IN relationships(p) WHERE abs(f.weight) >= $min_weight)
WITH r, g, [n IN nodes(p) | n.group_id] AS groups, [f IN relationships(p) | f.weight] AS weights
WITH r, g, groups, weights, reduce(acc = 1.0, w IN weights | acc * w) AS product,
  reduce(acc = 0.0, w IN weights | acc + log(abs(w))) AS log_strength
RETURN r.id AS run_id, g.group_id AS source, groups, weights, product, abs(product) AS strength, log_strength,
  size(weights) AS hops
ORDER BY strength DESC, groups
LIMIT $limit
