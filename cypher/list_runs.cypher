// Lists the stored runs, newest first, with their class and whether their ingest completed.
// Parameters: none.
// Writes: false
// Returns: run_id, complete, model, class_id, class_index, class_name, created_at.
// Example: run_cypher(driver, db, "list_runs") -> [{"run_id": "digits-c3-5f2a9c1e", "complete": True, "model": "digits", …}]
MATCH (r:Run)
MATCH (r)-[:FOR_CLASS]->(c:Class)
RETURN r.id AS run_id, r.complete AS complete, c.model AS model, c.id AS class_id, c.index AS class_index,
  c.name AS class_name, r.created_at AS created_at
ORDER BY created_at DESC, run_id
