// Links each neuron group of a run to its exemplar patches: (:NeuronGroup)-[:EXEMPLAR {rank}]->(:Patch),
// rank 0 being nearest the cluster centre. One row per neuron group.
// Parameters: $rows — list of rows laid out as below: a NeuronGroup node id, its exemplar Patch node ids
//   best first.
// Row: [group_id, patches]
// Writes: true
// Returns: written — relationships created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_exemplars",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", ["digits-c3-5f2a9c1e/p9", "digits-c3-5f2a9c1e/p3"]]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[0]})
UNWIND range(0, size(row[1]) - 1) AS rank
MATCH (p:Patch {id: row[1][rank]})
CREATE (g)-[:EXEMPLAR {rank: rank}]->(p)
RETURN count(*) AS written, 0 AS nodes, count(*) AS relationships
