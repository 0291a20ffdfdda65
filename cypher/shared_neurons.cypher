// The neurons of a layer that many classes use: how many classes' circuits hold each neuron of the layer, and
// in how many neuron groups. Each class is represented by its latest complete run (Run.latest), as in
// shared_groups.cypher. The writer keeps those counts on each Neuron
// (class_ids, class_groups: write_class_neurons.cypher), so this reads one node per neuron of the layer.
// Parameters: $layer — a layer name ("conv2") or Layer id ("digits/conv2"); $min_classes — int, neurons in
//   fewer classes' circuits are dropped; $limit — int, neurons returned.
// Defaults: $min_classes = 2, $limit = 100
// Writes: false
// Returns: one row per neuron, most classes first (then most groups, then channel): neuron_id, layer, channel,
//   n_classes, classes (class ids, sorted), n_groups (neuron groups it belongs to in those runs).
// Example: run_cypher(driver, db, "shared_neurons", layer="conv2", min_classes=2, limit=10)
//   -> [{"neuron_id": "digits/conv2/14", "layer": "conv2", "channel": 14, "n_classes": 2,
//        "classes": ["digits/3", "digits/5"], "n_groups": 3}, …]
MATCH (l:Layer)
WHERE l.id = $layer OR l.name = $layer
MATCH (n:Neuron)-[:IN_LAYER]->(l)
WITH n, coalesce(n.class_ids, []) AS classes, coalesce(n.class_groups, []) AS counts
WHERE size(classes) > 0 AND size(classes) >= $min_classes
RETURN n.id AS neuron_id, n.layer AS layer, n.channel AS channel, size(classes) AS n_classes, classes,
  reduce(total = 0, k IN counts | total + k) AS n_groups
ORDER BY n_classes DESC, n_groups DESC, channel, neuron_id
LIMIT $limit
