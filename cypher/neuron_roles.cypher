// What one neuron does across classes: in the latest complete run of every class whose circuit holds it, its
// place in the circuit and every semantic group it owns, each with the neuron group that semantic group fell
// into. A leaf neuron (lowest layer) has no semantic group: its row has nulls there.
// Parameters: $neuron_id — "{model}/{layer}/{channel}", e.g. "digits/conv2/14".
// Writes: false
// Returns: one row per (class, semantic group), by class then semantic group index: class_id, class_name,
//   run_id, layer, layer_index, is_root, is_leaf, activation_max, semantic_group (sg id), semantic_group_index,
//   n_patches, mean_activation, neuron_group (group id within the run), group_node (its node id), group_size
//   (neurons), group_label (concept label, or null).
// Example: run_cypher(driver, db, "neuron_roles", neuron_id="digits/conv2/14")
//   -> [{"class_id": "digits/3", "semantic_group": "digits/conv2/14#s0", "neuron_group": "conv2/g2", …}, …]
MATCH (r:Run)-[:FOR_CLASS]->(c:Class)
WHERE r.complete = true AND r.latest = true
WITH c, r
MATCH (n:Neuron {id: $neuron_id})-[ic:IN_CIRCUIT]->(r)
OPTIONAL MATCH (n)-[:HAS_SEMANTIC_GROUP]->(s:SemanticGroup)
WHERE s.run_id = r.id
OPTIONAL MATCH (s)-[:IN_GROUP]->(g:NeuronGroup)
RETURN c.id AS class_id, c.name AS class_name, r.id AS run_id, n.layer AS layer, ic.layer_index AS layer_index,
  ic.is_root AS is_root, ic.is_leaf AS is_leaf, ic.activation_max AS activation_max, s.sg_id AS semantic_group,
  s.group_index AS semantic_group_index, size(s.patch_ids) AS n_patches, s.mean_activation AS mean_activation,
  g.group_id AS neuron_group, g.id AS group_node, g.n_neurons AS group_size, g.label AS group_label
ORDER BY class_id, semantic_group_index
