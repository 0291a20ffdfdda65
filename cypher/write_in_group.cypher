// Puts a run's semantic groups into their neuron groups: (:SemanticGroup)-[:IN_GROUP]->(:NeuronGroup).
// One row per neuron group, listing its semantic groups (fewer lookups than one row per relationship).
// Parameters: $rows — list of rows laid out as below: a NeuronGroup node id, a list of SemanticGroup node ids.
// Row: [group_id, members]
// Writes: true
// Returns: written — relationships created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_in_group",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", ["digits-c3-5f2a9c1e/digits/conv3/7#s0"]]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[0]})
UNWIND row[1] AS member
MATCH (s:SemanticGroup {id: member})
CREATE (s)-[:IN_GROUP]->(g)
RETURN count(*) AS written, 0 AS nodes, count(*) AS relationships
