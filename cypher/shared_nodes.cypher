// The shared Model and Class nodes a run is about to join, as the store holds them (no row values when absent):
// the writer refuses a bundle that would rename one (a run never renames a node other runs share).
// Parameters: $model_id — model name; $class_id — class id ({model}/{index}).
// Writes: false
// Returns: one row: model_name, model_preset, model_num_classes, class_name, class_model, class_index (null where
//   the node is not stored yet).
// Example: run_cypher(driver, db, "shared_nodes", model_id="digits", class_id="digits/3")
//   -> [{"model_name": "digits", "model_preset": "digits", "model_num_classes": 10, "class_name": "3", ...}]
OPTIONAL MATCH (m:Model {id: $model_id})
OPTIONAL MATCH (c:Class {id: $class_id})
RETURN m.name AS model_name, m.preset AS model_preset, m.num_classes AS model_num_classes, c.name AS class_name,
  c.model AS class_model, c.index AS class_index
