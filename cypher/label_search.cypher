// Neuron groups whose label or description contains a text (case-insensitive), with their run and class.
// Parameters: $text — the text to look for, e.g. "stripes".
// Writes: false
// Returns: run_id, class_id, group_id, layer, label, description, label_model.
// Example: run_cypher(driver, db, "label_search", text="stripes")
//   -> [{"run_id": "resnet50-c340-…", "class_id": "resnet50/340", "group_id": "layer4.2/g1", "label": "black and white stripes", …}]
MATCH (g:NeuronGroup)-[:IN_RUN]->(r:Run)-[:FOR_CLASS]->(c:Class)
WHERE g.label IS NOT NULL AND (toLower(g.label) CONTAINS toLower($text)
  OR toLower(g.description) CONTAINS toLower($text))
RETURN r.id AS run_id, c.id AS class_id, g.group_id AS group_id, g.layer AS layer, g.label AS label,
  g.description AS description, g.label_model AS label_model
ORDER BY run_id, g.layer_index, group_id
