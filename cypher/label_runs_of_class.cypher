// The complete runs of a class, its latest complete run first (Run.latest, the run every class-level query picks),
// then newest first: the runs `label CLASS` can label (it takes the first, so `label` and `show` agree).
// A class is named by its id ("{model}/{class_index}"), its name, or its index written as text.
// Parameters: $class_ref — "digits/3", "3" (index or name) or e.g. "great white shark".
// Writes: false
// Returns: run_id, complete, class_id, class_name, class_index, model, created_at, bundle_path.
// Example: run_cypher(driver, db, "label_runs_of_class", class_ref="digits/3")
//   -> [{"run_id": "digits-c3-5f2a9c1e", "complete": True, "class_id": "digits/3", "bundle_path": "/runs/d3", …}]
MATCH (r:Run)-[:FOR_CLASS]->(c:Class)
WHERE r.complete = true AND (c.id = $class_ref OR c.name = $class_ref OR toString(c.index) = $class_ref)
RETURN r.id AS run_id, r.complete AS complete, c.id AS class_id, c.name AS class_name, c.index AS class_index,
  c.model AS model, r.created_at AS created_at, r.bundle_path AS bundle_path
ORDER BY CASE WHEN r.latest = true THEN 0 ELSE 1 END, created_at DESC, r.completed_at DESC, run_id DESC
