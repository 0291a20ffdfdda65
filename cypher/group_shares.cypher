// The groups of other runs that share member neurons with one group (its SHARES pairs, either direction), with
// the class and run each belongs to: where else in the store the group's neurons work together.
// Parameters: $group_id — NeuronGroup node id "{run_id}/{group_id}"; $min_jaccard — float, pairs below it are
//   dropped; $limit — int, the most pairs returned.
// Defaults: $min_jaccard = 0.0, $limit = 50
// Writes: false
// Returns: one row per pair, by jaccard (highest first) then the other group's id: id (the other group's node
//   id), group_id, layer, label, n_neurons, run_id, latest (its run is its class's latest complete one),
//   class_id, class_name, jaccard, shared (neurons in common), shared_neurons (their ids).
// Example: run(driver, db, "group_shares", group_id="digits-c3-3520059de8/conv2/g0", min_jaccard=0.0, limit=50)
//   -> [{"id": "digits-c5-1cd422a888/conv2/g1", "class_id": "digits/5", "jaccard": 0.5, "shared": 2, …}, …]
MATCH (g:NeuronGroup {id: $group_id})-[s:SHARES]-(y:NeuronGroup)
WHERE s.jaccard >= $min_jaccard
MATCH (y)-[:IN_RUN]->(r:Run)-[:FOR_CLASS]->(c:Class)
RETURN y.id AS id, y.group_id AS group_id, y.layer AS layer, y.label AS label, y.n_neurons AS n_neurons,
  r.id AS run_id, r.latest = true AS latest, c.id AS class_id, c.name AS class_name, s.jaccard AS jaccard,
  s.shared AS shared, s.neurons AS shared_neurons
ORDER BY jaccard DESC, id
LIMIT $limit
