// A run's parameters and provenance: every property of its Run node (run.json flattened, the whole run.json as
// `run_json`, the bundle folder, ingest times and counts) with its model and class.
// Parameters: $run_id — run id, e.g. "digits-c3-3520059de8".
// Writes: false
// Returns: run_id, complete, class_id, class_name, model, properties (map of every Run property); no row when
//   the run is not stored.
// Example: run_cypher(driver, db, "run_provenance", run_id="digits-c3-3520059de8")
//   -> [{"run_id": "digits-c3-3520059de8", "complete": True, "class_id": "digits/3", "model": "digits",
//        "properties": {"params_k": 20, "params_tau": 4, "bundle_path": "/…/digits-3", "run_json": "{…}", …}}]
MATCH (r:Run {id: $run_id})
MATCH (r)-[:FOR_CLASS]->(c:Class)
RETURN r.id AS run_id, r.complete AS complete, c.id AS class_id, c.name AS class_name, c.model AS model,
  properties(r) AS properties
