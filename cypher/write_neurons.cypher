// Writes the circuit neurons of a run: the shared Neuron node (merged on id) in its Layer, and the run's
// per-neuron data on a new (:Neuron)-[:IN_CIRCUIT]->(:Run) relationship.
// Parameters: $run_id — run id; $model_id — model name; $rows — list of rows laid out as below.
// Row: [id, layer, layer_id, channel, layer_index, is_root, is_leaf, activation_max, top_patch_ids]
// Writes: true
// Returns: written — rows written (size($rows) unless a Layer or the Run is missing); nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_neurons", run_id="digits-c3-5f2a9c1e", model_id="digits",
//   rows=[["digits/fc/3", "fc", "digits/fc", 3, 0, True, False, 9.1, [4, 17]]])
MATCH (r:Run {id: $run_id})
UNWIND $rows AS row
MATCH (l:Layer {id: row[2]})
MERGE (n:Neuron {id: row[0]})
ON CREATE SET n.model = $model_id, n.layer = row[1], n.channel = row[3]
MERGE (n)-[:IN_LAYER]->(l)
CREATE (n)-[:IN_CIRCUIT {run_id: $run_id, layer_index: row[4], is_root: row[5], is_leaf: row[6],
  activation_max: row[7], top_patch_ids: row[8]}]->(r)
RETURN count(*) AS written, count(*) AS nodes, 2 * count(*) AS relationships
