// The SHARES pairs of one class's latest groups (NeuronGroup.latest) with latest groups of other classes: what
// shared_groups reads when given a class (`run_query` ranks them in Python and names the other classes of the
// pairs it answers with run_classes.cypher, so the pairs it leaves out cost no class lookup).
// Parameters: $class_id — "{model}/{class_index}"; $min_jaccard — float, pairs below it are dropped; $layer — a layer
//   name ("conv2") or Layer id ("digits/conv2"), or null for every layer.
// Writes: false
// Returns: one row: pairs (a list of [group of the class, other group, its run, the other's run, layer, jaccard,
//   shared, n, other n, shared neuron ids]).
// Example: run_cypher(driver, db, "shares_of_class", class_id="digits/3", min_jaccard=0.3, layer=None)
//   -> [{"pairs": [["digits-c3-3520059de8/conv2/g0", "digits-c8-1cd422a888/conv2/g0", "digits-c3-3520059de8", …]]}]
MATCH (:Class {id: $class_id})<-[:FOR_CLASS]-(r:Run)
WHERE r.complete = true AND r.latest = true
MATCH (x:NeuronGroup)-[:IN_RUN]->(r)
WHERE x.is_root = false AND ($layer IS NULL OR x.layer = $layer OR $layer ENDS WITH '/' + x.layer)
OPTIONAL MATCH (x)-[s:SHARES]-(y:NeuronGroup)
WHERE y.latest = true AND s.jaccard >= $min_jaccard
RETURN collect(CASE WHEN s IS NULL THEN NULL ELSE [x.id, y.id, x.run_id, y.run_id, x.layer, s.jaccard, s.shared,
  x.n_neurons, y.n_neurons, s.neurons] END) AS pairs
