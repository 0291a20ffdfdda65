// How far to trust a class's circuit, layer by layer: at each layer below the logit, the class logit and probability
// drop when the circuit's neurons there are masked on the run's own images, against random sets of the same size
// from the same layer (mean, standard deviation, z), and the share of the class logit kept when only they are
// retained, against random sets likewise (docs/results.md, "Faithfulness stored with every circuit").
// The run is $run_id when given, else the latest complete run of the class. A run ingested with
// --faithfulness off gives no row.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null
//   for the latest complete one.
// Defaults: $run_id = null
// Writes: false
// Returns: one row per layer, from the logit down: run_id, class_id, verdict (the run's, in plain words), layer,
//   layer_index, n_core, width, n_images, logit_drop, random_logit_drop_mean, random_logit_drop_std, logit_z,
//   prob_drop, random_prob_drop_mean, random_prob_drop_std, prob_z, kept_share, random_kept_share_mean,
//   random_kept_share_std, kept_z, mask_accuracy, retain_accuracy, beats_random, sets, seed.
// Example: run_cypher(driver, db, "faithfulness", class_id="digits/3", run_id=None)
//   -> [{"run_id": "digits-c3-5f2a9c1e", "layer": "conv3", "logit_drop": 7.6, "random_logit_drop_mean": 1.5,
//        "random_logit_drop_std": 1.1, "logit_z": 5.3, "kept_share": 0.67, "beats_random": True, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
  AND r.faith_layer IS NOT NULL
UNWIND range(0, size(r.faith_layer) - 1) AS i
RETURN r.id AS run_id, c.id AS class_id, r.faithfulness_verdict AS verdict, r.faith_layer[i] AS layer,
  r.faith_layer_index[i] AS layer_index, r.faith_n_core[i] AS n_core, r.faith_width[i] AS width,
  r.faith_n_images[i] AS n_images, r.faith_logit_drop[i] AS logit_drop,
  r.faith_random_logit_drop_mean[i] AS random_logit_drop_mean,
  r.faith_random_logit_drop_std[i] AS random_logit_drop_std, r.faith_logit_z[i] AS logit_z,
  r.faith_prob_drop[i] AS prob_drop, r.faith_random_prob_drop_mean[i] AS random_prob_drop_mean,
  r.faith_random_prob_drop_std[i] AS random_prob_drop_std, r.faith_prob_z[i] AS prob_z,
  r.faith_kept_share[i] AS kept_share, r.faith_random_kept_share_mean[i] AS random_kept_share_mean,
  r.faith_random_kept_share_std[i] AS random_kept_share_std, r.faith_kept_z[i] AS kept_z,
  r.faith_mask_accuracy[i] AS mask_accuracy, r.faith_retain_accuracy[i] AS retain_accuracy,
  r.faith_beats_random[i] AS beats_random, r.faithfulness_sets AS sets, r.faithfulness_seed AS seed
ORDER BY layer_index
