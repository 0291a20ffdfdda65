// Closes the ingest of one run: the very last transaction, which alone sets `complete = true`, and in the same
// transaction flags the latest complete run of its class (Run.latest: $latest_run, which the writer picked among
// the class's complete runs and this one; false on the class's other runs) and copies each run's flag onto its
// neuron groups (NeuronGroup.latest, what the cross-class queries filter on). A crash before it leaves the run
// incomplete and the flags as they were, so re-running the ingest converges.
// Parameters: $run_id — run id; $counts — map of what was written (n_neurons, n_patches, n_semantic_groups,
//   n_neuron_groups, n_hyperedges, n_group_edges), stored on the Run; $completed_at — ISO timestamp;
//   $latest_run — the class's latest complete run once this one is complete (this run id or another).
// Writes: true
// Returns: run_id, complete (no row when the Run does not exist).
// Example: run_cypher(driver, db, "write_run_complete", run_id="digits-c3-5f2a9c1e", counts={"n_neurons": 40},
//   completed_at="2026-11-22T10:00:00.123456+00:00", latest_run="digits-c3-5f2a9c1e")
MATCH (r:Run {id: $run_id})
SET r += $counts, r.completed_at = $completed_at, r.complete = true
WITH r
MATCH (r)-[:FOR_CLASS]->(c:Class)
MATCH (other:Run)-[:FOR_CLASS]->(c)
SET other.latest = (other.id = $latest_run AND other.complete = true)
WITH r, other
OPTIONAL MATCH (g:NeuronGroup)-[:IN_RUN]->(other)
WITH r, other, collect(g) AS groups
FOREACH (g IN groups | SET g.latest = other.latest)
WITH r, count(other) AS flagged
RETURN r.id AS run_id, r.complete AS complete
