// Creates the SemanticGroup nodes of a run, each attached to its neuron: (:Neuron)-[:HAS_SEMANTIC_GROUP]->(s).
// Parameters: $run_id — run id; $rows — list of rows laid out as below (id is "{run_id}/{sg_id}").
// Row: [id, sg_id, neuron_id, layer, layer_index, group_index, patch_ids, mean_activation, neuron_group_id]
// Writes: true
// Returns: written — semantic groups created (a row whose neuron is missing is not written); nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_semantic_groups", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/digits/conv3/7#s0", "digits/conv3/7#s0", "digits/conv3/7", "conv3", 1, 0,
//   [3, 9], 1.2, "conv3/g1"]])
UNWIND $rows AS row
MATCH (n:Neuron {id: row[2]})
CREATE (n)-[:HAS_SEMANTIC_GROUP]->(s:SemanticGroup {id: row[0], run_id: $run_id, sg_id: row[1],
  neuron_id: row[2], layer: row[3], layer_index: row[4], group_index: row[5], patch_ids: row[6],
  mean_activation: row[7], neuron_group_id: row[8]})
RETURN count(*) AS written, count(*) AS nodes, count(*) AS relationships
