// The evaluation results stored for one run (Evaluation nodes written by `neurflow-graph evaluate`), each with
// every property it holds.
// Parameters: $run_id — run id.
// Writes: false
// Returns: one row per Evaluation node, by id: id, properties (a map of its stored figures).
// Example: run(driver, db, "run_evaluations", run_id="digits-c3-3520059de8")
//   -> [{"id": "…", "properties": {…}}]
MATCH (e:Evaluation)-[:EVALUATES]->(:Run {id: $run_id})
RETURN e.id AS id, properties(e) AS properties
ORDER BY id
