// Stores one evaluation of a run (optimality, fidelity or weights: paper section 4, docs/results.md) as an
// Evaluation node linked to the Run it evaluates. Nothing is written when the Run is not in the store (no row
// comes back); storing the same evaluation id again replaces its properties (SET e = $props).
// Parameters: $id — evaluation id, "{kind}-{run_id}-{hash of the parameters}";
//   $run_id — id of the evaluated Run; $props — map of the record's flattened properties: kind, run_id,
//   created_at, params_* and summary_* scalars or homogeneous lists, and params_json, summary_json, layers_json
//   (the full record as JSON strings).
// Writes: true
// Returns: id, run_id.
// Example: store_evaluation(conn.run, record) runs
//   run(driver, db, "write_evaluation", id="optimality-digits-c3-9fda25f685-1c2d3e4f",
//       run_id="digits-c3-9fda25f685", props={"kind": "optimality", "summary_mean_diff": 0.41, ...})
MATCH (r:Run {id: $run_id})
MERGE (e:Evaluation {id: $id})
SET e = $props, e.id = $id, e.run_id = $run_id
MERGE (e)-[:EVALUATES]->(r)
RETURN e.id AS id, r.id AS run_id
