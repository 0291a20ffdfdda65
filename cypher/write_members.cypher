// Puts a run's neurons into their neuron groups: (:Neuron)-[:MEMBER_OF {run_id}]->(:NeuronGroup).
// One row per neuron group, listing its neurons.
// Parameters: $run_id — run id; $rows — list of rows laid out as below: a NeuronGroup node id, neuron ids.
// Row: [group_id, members]
// Writes: true
// Returns: written — relationships created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_members", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", ["digits/conv3/7", "digits/conv3/12"]]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[0]})
UNWIND row[1] AS member
MATCH (n:Neuron {id: member})
CREATE (n)-[:MEMBER_OF {run_id: $run_id}]->(g)
RETURN count(*) AS written, 0 AS nodes, count(*) AS relationships
