// Creates the NeuronGroup nodes of a run and their (:NeuronGroup)-[:IN_RUN]->(:Run) relationship.
// Parameters: $run_id — run id; $rows — list of rows laid out as below (id is "{run_id}/{group_id}",
//   patch_ids the group's concept as patch_id ints, neurons its member neuron ids by channel: what the circuit
//   reads, so that it loads no Neuron node, whose class lists grow with the classes).
// Row: [id, group_id, layer, layer_index, group_index, is_root, patch_ids, n_neurons, n_semantic_groups, neurons]
// Writes: true
// Returns: written — groups created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_neuron_groups", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/conv3/g0", "conv3/g0", "conv3", 1, 0, False, [1, 5], 3, 4,
//   ["digits/conv3/1", "digits/conv3/7", "digits/conv3/12"]]])
MATCH (r:Run {id: $run_id})
UNWIND $rows AS row
CREATE (g:NeuronGroup {id: row[0], run_id: $run_id, group_id: row[1], layer: row[2], layer_index: row[3],
  group_index: row[4], is_root: row[5], patch_ids: row[6], n_neurons: row[7], n_semantic_groups: row[8],
  neurons: row[9]})
  -[:IN_RUN]->(r)
RETURN count(*) AS written, count(*) AS nodes, count(*) AS relationships
