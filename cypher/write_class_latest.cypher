// Flags the latest complete run of a class: Run.latest = true on that run, false on every other run of the class,
// each run's flag copied onto its neuron groups (NeuronGroup.latest). The writer picks the run (newest created_at,
// then newest completed_at, then greatest run id: neurflow_graph/store/writer.py latest_run); every class-level
// query reads the flag instead of ordering runs.
// Run when a complete run turns incomplete (a re-ingest starts); write_run_complete.cypher flags a completing run.
// Parameters: $class_id — "{model}/{class_index}"; $run_id — the class's latest complete run, or null when none.
// Writes: true
// Returns: flagged — runs of the class whose flag was set (true or false).
// Example: run_cypher(driver, db, "write_class_latest", class_id="digits/3", run_id="digits-c3-3520059de8")
//   -> [{"flagged": 2}]
MATCH (r:Run)-[:FOR_CLASS]->(:Class {id: $class_id})
SET r.latest = (coalesce(r.id = $run_id, false) AND r.complete = true)
WITH r
OPTIONAL MATCH (g:NeuronGroup)-[:IN_RUN]->(r)
WITH r, collect(g) AS groups
FOREACH (g IN groups | SET g.latest = r.latest)
RETURN count(r) AS flagged
