// Stores image-debugging results (paper section 5.1): one Intervention node per masked neuron group, linked to
// it by (:Intervention)-[:MASKS]->(:NeuronGroup). The id is deterministic (run, group, image set, seeds), so a
// re-run MERGEs onto the same node and replaces its properties (SET i = props): re-runs are idempotent.
// Parameters: $rows — list of rows laid out as below: the Intervention id, the NeuronGroup node id, and a map of
//   its properties (kind, run_id, class_id, group_id, layer, channels, n_images, image_set, seeds, metric_*,
//   logit_drop*, prob_drop*, random_*, top_*, created_at; see neurflow_graph/debugging/store.py).
// Row: [id, group, props]
// Writes: true
// Returns: written — Interventions written (a row whose group is not stored is skipped).
// Example: run_cypher(driver, db, "write_interventions",
//   rows=[["digits-c3-3520059de8/conv3/g0/mask-1c2d3e4f5a6b", "digits-c3-3520059de8/conv3/g0",
//          {"kind": "mask_group", "prob_drop": 0.08, "random_prob_drop_mean": 0.02, …}]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[1]})
MERGE (i:Intervention {id: row[0]})
SET i = row[2], i.id = row[0]
MERGE (i)-[:MASKS]->(g)
RETURN count(*) AS written
