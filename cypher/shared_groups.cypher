// Neuron groups shared across classes: pairs of groups of different classes, in the same layer, whose member
// neurons overlap, ranked by the Jaccard index |A ∩ B| / |A ∪ B| of their neuron sets. Each class is
// represented by its latest complete run (newest created_at, then completed_at, then run id); root groups (the
// class logits) are left out. Each unordered pair appears once (group_a is in the run with the smaller id).
// With $class_id the pairs are read from that class's groups only, not from every pair of the store.
// Parameters: $min_jaccard — float in [0, 1], pairs below it are dropped (pairs sharing no neuron never appear);
//   $layer — a layer name ("conv2") or Layer id ("digits/conv2"), or null for every layer; $class_id — keep
//   only pairs with a group of this class ("digits/3"), or null; $limit — int, pairs returned.
// Defaults: $min_jaccard = 0.5, $layer = null, $class_id = null, $limit = 100
// Returns: one row per pair, by Jaccard (then shared neurons) descending: layer, class_a, group_a, class_b,
//   group_b (NeuronGroup node ids), jaccard, shared (neurons in both), n_a, n_b (group sizes), shared_neurons.
// Example: run(driver, db, "shared_groups", min_jaccard=0.3, layer=None, class_id=None, limit=10)
//   -> [{"layer": "conv2", "class_a": "digits/3", "group_a": "digits-c3-3520059de8/conv2/g0",
//        "class_b": "digits/8", "group_b": "digits-c8-1cd422a888/conv2/g0", "jaccard": 0.5, "shared": 3, …}, …]
MATCH (r:Run)-[:FOR_CLASS]->(c:Class)
WHERE r.complete = true
WITH c, r
ORDER BY r.created_at DESC, r.completed_at DESC, r.id DESC
WITH c, collect(r)[0] AS r
WITH collect(r) AS latest, collect(r.id) AS runs, collect(c.id) AS classes
UNWIND range(0, size(runs) - 1) AS i
WITH runs, classes, latest[i] AS r
WHERE $class_id IS NULL OR classes[i] = $class_id
MATCH (x:NeuronGroup)-[:IN_RUN]->(r)
MATCH (n:Neuron)-[:MEMBER_OF]->(x)
WHERE $layer IS NULL OR x.layer = $layer OR n.id STARTS WITH $layer + '/'
MATCH (n)-[:MEMBER_OF]->(y:NeuronGroup)
WHERE y.layer = x.layer AND (y.run_id > x.run_id OR ($class_id IS NOT NULL AND y.run_id < x.run_id))
  AND y.run_id IN runs
WITH runs, classes, n, CASE WHEN x.run_id < y.run_id THEN x ELSE y END AS a,
  CASE WHEN x.run_id < y.run_id THEN y ELSE x END AS b
WHERE a.is_root = false
WITH runs, classes, a, b, count(n) AS shared, collect(n.id) AS shared_neurons
WITH runs, classes, a, b, shared, shared_neurons, toFloat(shared) / (a.n_neurons + b.n_neurons - shared) AS jaccard
WHERE jaccard >= $min_jaccard
WITH a, b, shared, shared_neurons, jaccard, classes[[i IN range(0, size(runs) - 1) WHERE runs[i] = a.run_id][0]]
  AS class_a, classes[[i IN range(0, size(runs) - 1) WHERE runs[i] = b.run_id][0]] AS class_b
RETURN a.layer AS layer, class_a, a.id AS group_a, class_b, b.id AS group_b, jaccard, shared,
  a.n_neurons AS n_a, b.n_neurons AS n_b, shared_neurons
ORDER BY jaccard DESC, shared DESC, group_a, group_b
LIMIT $limit
