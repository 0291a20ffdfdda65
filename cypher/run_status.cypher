// Whether a run is stored and complete, with the counts recorded on it when its ingest completed.
// A run whose ingest was interrupted has complete = false (and no counts).
// Parameters: $run_id — run id.
// Writes: false
// Returns: run_id, complete, completed_at, n_neurons, n_patches, n_semantic_groups, n_neuron_groups,
//   n_hyperedges, n_group_edges (no row when the run is not stored).
// Example: run_cypher(driver, db, "run_status", run_id="digits-c3-5f2a9c1e") -> [{"run_id": …, "complete": True, …}]
MATCH (r:Run {id: $run_id})
RETURN r.id AS run_id, r.complete AS complete, r.completed_at AS completed_at, r.n_neurons AS n_neurons,
  r.n_patches AS n_patches, r.n_semantic_groups AS n_semantic_groups, r.n_neuron_groups AS n_neuron_groups,
  r.n_hyperedges AS n_hyperedges, r.n_group_edges AS n_group_edges
