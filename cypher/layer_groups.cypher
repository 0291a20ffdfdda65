// The neuron groups of one layer of a class's circuit, with what image debugging needs: each group's member
// neurons (channels) with their activation_max in that run (the max over the run's patches, the normaliser of
// the group-confidence metric), and how strongly the group feeds the layer above (the sum of its outgoing
// FEEDS weights). The run is $run_id when given, else the latest complete run of the class.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null;
//   $layer — the layer name, e.g. "conv3".
// Defaults: $run_id = null
// Writes: false
// Returns: one row per group of the layer, by group index: run_id, id (node id), group_id, layer, layer_index,
//   group_index, is_root, neurons (neuron ids), channels, activation_max (parallel lists, by channel),
//   weight_up (sum of the signed weights of its FEEDS edges), label, description. No row when the class has no
//   complete run or the layer has no groups in it.
// Example: run_cypher(driver, db, "layer_groups", class_id="digits/3", run_id=None, layer="conv3")
//   -> [{"group_id": "conv3/g0", "channels": [0, 48, 63], "activation_max": [4.5, 9.0, 11.9],
//        "weight_up": 0.73, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
WITH r
MATCH (g:NeuronGroup)
WHERE g.run_id = r.id AND g.layer = $layer
CALL {
  WITH g, r
  MATCH (n:Neuron)-[:MEMBER_OF]->(g)
  MATCH (n)-[ic:IN_CIRCUIT]->(r)
  WITH n, ic
  ORDER BY n.channel
  RETURN collect(n.id) AS neurons, collect(n.channel) AS channels, collect(ic.activation_max) AS activation_max
}
CALL {
  WITH g
  OPTIONAL MATCH (g)-[f:FEEDS]->(:NeuronGroup)
  RETURN sum(f.weight) AS weight_up
}
RETURN r.id AS run_id, g.id AS id, g.group_id AS group_id, g.layer AS layer, g.layer_index AS layer_index,
  g.group_index AS group_index, g.is_root AS is_root, neurons, channels, activation_max, weight_up,
  g.label AS label, g.description AS description
ORDER BY group_index
