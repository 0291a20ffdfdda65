// Creates the edges between a run's neuron groups: (child:NeuronGroup)-[:FEEDS {weight, n_edges, run_id}]
// ->(parent:NeuronGroup); the top groups feed the root group, which is LOGIT_OF the class.
// Parameters: $run_id — run id; $rows — list of rows laid out as below: two NeuronGroup node ids, the sum of
//   the hyper-edge weights between them and how many hyper-edges that sums.
// Row: [child, parent, weight, n_edges]
// Writes: true
// Returns: written — relationships created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_group_edges", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", "digits-c3-5f2a9c1e/fc/g0", 0.42, 3]])
UNWIND $rows AS row
MATCH (c:NeuronGroup {id: row[0]})
MATCH (p:NeuronGroup {id: row[1]})
CREATE (c)-[:FEEDS {run_id: $run_id, weight: row[2], n_edges: row[3]}]->(p)
RETURN count(*) AS written, 0 AS nodes, count(*) AS relationships
