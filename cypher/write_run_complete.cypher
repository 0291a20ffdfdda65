// Closes the ingest of one run: the very last transaction, which alone sets `complete = true`.
// Parameters: $run_id — run id; $counts — map of what was written (n_neurons, n_patches, n_semantic_groups,
//   n_neuron_groups, n_hyperedges, n_group_edges), stored on the Run; $completed_at — ISO timestamp.
// Returns: run_id, complete (no row when the Run does not exist).
// Example: run(driver, db, "write_run_complete", run_id="digits-c3-5f2a9c1e", counts={"n_neurons": 40},
//   completed_at="2026-11-22T10:00:00+00:00")
MATCH (r:Run {id: $run_id})
SET r += $counts, r.completed_at = $completed_at, r.complete = true
RETURN r.id AS run_id, r.complete AS complete
