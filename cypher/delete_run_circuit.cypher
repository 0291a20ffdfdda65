// Deletes up to $limit IN_CIRCUIT relationships of a run (the run's per-neuron data; the shared Neuron nodes stay).
// Call repeatedly until it returns deleted = 0.
// Parameters: $run_id — run id; $limit — int, relationships per call.
// Writes: true
// Returns: deleted (int).
// Example: run_cypher(driver, db, "delete_run_circuit", run_id="digits-c3-5f2a9c1e", limit=10000) -> [{"deleted": 40}]
MATCH (r:Run {id: $run_id})
MATCH (:Neuron)-[c:IN_CIRCUIT]->(r)
WITH c LIMIT $limit
DELETE c
RETURN count(*) AS deleted
