// Which classes' circuits hold up: every class's latest complete run ranked by its faithfulness, weakest first,
// optionally only those whose weakest layer's z is below $max_z (the circuits to distrust) or of one model.
// The weakest layer is the one whose core-neuron mask drops the class logit least beyond random sets of the same
// size, in standard deviations of those sets (z); layers whose core is the whole layer are left out.
// Parameters: $model — a model name, or null for every model; $max_z — keep classes whose weakest z is below it,
//   or null for all; $limit — most rows.
// Defaults: $model = null, $max_z = null, $limit = 100
// Writes: false
// Returns: one row per class with a measured run, by weakest_z ascending: class_id, class_name, run_id, verdict,
//   weakest_layer, weakest_z, n_layers (layers tested), n_beating (layers where core beats random),
//   beats_random_everywhere, level, sets, seed.
// Example: run_cypher(driver, db, "faithfulness_classes", model="digits", max_z=None, limit=100)
//   -> [{"class_id": "digits/8", "weakest_layer": "conv2", "weakest_z": 0.4, "beats_random_everywhere": False, …}]
MATCH (r:Run)-[:FOR_CLASS]->(c:Class)
WHERE r.complete = true AND r.latest = true AND r.faithfulness_weakest_z IS NOT NULL
  AND ($model IS NULL OR c.model = $model)
  AND ($max_z IS NULL OR r.faithfulness_weakest_z < $max_z)
RETURN c.id AS class_id, c.name AS class_name, r.id AS run_id, r.faithfulness_verdict AS verdict,
  r.faithfulness_weakest_layer AS weakest_layer, r.faithfulness_weakest_z AS weakest_z,
  r.faithfulness_n_layers AS n_layers, r.faithfulness_n_beating AS n_beating,
  r.faithfulness_beats_random_everywhere AS beats_random_everywhere, r.faithfulness_level AS level,
  r.faithfulness_sets AS sets, r.faithfulness_seed AS seed
ORDER BY weakest_z, class_id
LIMIT $limit
