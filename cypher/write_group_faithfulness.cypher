// Sets the per-group faithfulness figures (`--faithfulness groups`, docs/results.md) on a run's NeuronGroup nodes:
// masking the group's neurons on the run's own images against random sets of the same size (what `debug` computes).
// Parameters: $rows — list of rows laid out as below: a NeuronGroup node id, then its figures.
// Row: [id, logit_drop, prob_drop, random_logit_drop_mean, random_logit_drop_std, random_prob_drop_mean, random_prob_drop_std, logit_z, share_random_worse, n_images]
// Writes: true
// Returns: written — groups updated (one per row); nodes, relationships — 0 (it creates none).
// Example: run_cypher(driver, db, "write_group_faithfulness",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", 1.9, 0.21, 0.4, 0.2, 0.03, 0.02, 7.5, 1.0, 12]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[0]})
SET g.faith_logit_drop = row[1], g.faith_prob_drop = row[2], g.faith_random_logit_drop_mean = row[3],
  g.faith_random_logit_drop_std = row[4], g.faith_random_prob_drop_mean = row[5],
  g.faith_random_prob_drop_std = row[6], g.faith_logit_z = row[7], g.faith_share_random_worse = row[8],
  g.faith_n_images = row[9]
RETURN count(*) AS written, 0 AS nodes, 0 AS relationships
