// Deletes up to $limit Intervention nodes (image-debugging results) of a run: they describe the run's neuron
// groups, which a re-ingest deletes and rewrites, so they go with them (re-run `debug` to recompute them).
// Call repeatedly until it returns deleted = 0; each call is one transaction of bounded size.
// Parameters: $run_id — run id; $limit — int, nodes per call.
// Writes: true
// Returns: deleted (int).
// Example: run_cypher(driver, db, "delete_run_interventions", run_id="digits-c3-5f2a9c1e", limit=2000) -> [{"deleted": 0}]
MATCH (i:Intervention {run_id: $run_id})
WITH i LIMIT $limit
DETACH DELETE i
RETURN count(*) AS deleted
