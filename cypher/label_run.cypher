// One stored run with its class, for `label --run RUN_ID` (no row when the run is not stored).
// Parameters: $run_id — run id.
// Writes: false
// Returns: run_id, complete, class_id, class_name, class_index, model, created_at, bundle_path.
// Example: run_cypher(driver, db, "label_run", run_id="digits-c3-5f2a9c1e")
//   -> [{"run_id": "digits-c3-5f2a9c1e", "complete": True, "class_id": "digits/3", "bundle_path": "/runs/d3", …}]
MATCH (r:Run {id: $run_id})-[:FOR_CLASS]->(c:Class)
RETURN r.id AS run_id, r.complete AS complete, c.id AS class_id, c.name AS class_name, c.index AS class_index,
  c.model AS model, r.created_at AS created_at, r.bundle_path AS bundle_path
