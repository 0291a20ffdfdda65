// Creates the hyper-edges of a run: (child:Neuron)-[:DRIVES {score, weight, core_score, core_rank, run_id}]
// ->(parent:SemanticGroup). One row per parent semantic group, its children as parallel lists.
// Parameters: $run_id — run id; $rows — list of rows laid out as below: a SemanticGroup node id, a list of
//   child neuron ids, and one list per edge value (all lists the same length).
// Row: [sg, children, score, weight, core_score, core_rank]
// Writes: true
// Returns: written — relationships created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_hyperedges", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/digits/fc/3#s0", ["digits/conv3/7"], [0.8], [1.0], [0.9], [0]]])
UNWIND $rows AS row
MATCH (s:SemanticGroup {id: row[0]})
UNWIND range(0, size(row[1]) - 1) AS i
MATCH (n:Neuron {id: row[1][i]})
CREATE (n)-[:DRIVES {run_id: $run_id, score: row[2][i], weight: row[3][i], core_score: row[4][i],
  core_rank: row[5][i]}]->(s)
RETURN count(*) AS written, 0 AS nodes, count(*) AS relationships
