// The image-debugging interventions stored for a class's circuit: every Intervention that MASKS a neuron group
// of ONE complete run of the class (the run is $run_id when given, else the latest complete run of the class).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null.
// Defaults: $run_id = null
// Writes: false
// Returns: one row per intervention, by layer index, group index, then id: id, run_id, group_id (within the
//   run), layer, properties (map of every Intervention property: prob_drop, logit_drop, random_*_mean/std,
//   metric_mean, top_images, …).
// Example: run_cypher(driver, db, "interventions", class_id="digits/3", run_id=None)
//   -> [{"id": "digits-c3-3520059de8/conv3/g0/mask-1c2d3e4f5a6b", "group_id": "conv3/g0",
//        "properties": {"prob_drop": 0.08, …}}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
WITH r
MATCH (g:NeuronGroup)
WHERE g.run_id = r.id
MATCH (i:Intervention)-[:MASKS]->(g)
RETURN i.id AS id, r.id AS run_id, g.group_id AS group_id, g.layer AS layer, properties(i) AS properties
ORDER BY g.layer_index, g.group_index, id
