// Deletes up to $limit SemanticGroup nodes of a run, with their relationships (clears a run before it is re-written).
// Call repeatedly until it returns deleted = 0; each call is one transaction of bounded size.
// Parameters: $run_id — run id; $limit — int, nodes per call.
// Writes: true
// Returns: deleted (int).
// Example: run_cypher(driver, db, "delete_run_semantic_groups", run_id="digits-c3-5f2a9c1e", limit=2000) -> [{"deleted": 2000}]
MATCH (n:SemanticGroup {run_id: $run_id})
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
