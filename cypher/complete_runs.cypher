// The runs whose ingest completed, with the request key each records (read once by a job, before scheduling:
// a class whose request key is here is skipped without loading or filtering its images; see docs/scale.md).
// A run stored from a bundle made before request keys has request_key null: it is skipped by run id only.
// Parameters: none.
// Writes: false
// Returns: run_id, request_key (null when the run's run.json has none), one row per complete run.
// Example: run_cypher(driver, db, "complete_runs") -> [{"run_id": "digits-c3-5f2a9c1e", "request_key": "digits-c3-r…"}]
MATCH (r:Run)
WHERE r.complete = true
RETURN r.id AS run_id, r.request_key AS request_key
ORDER BY run_id
