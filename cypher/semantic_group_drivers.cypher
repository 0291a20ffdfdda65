// The hyper-edges into one semantic group: which child neurons drive it, with what weight.
// Parameters: $semantic_group_id — SemanticGroup node id "{run_id}/{sg_id}".
// Writes: false
// Returns: one row per hyper-edge, by core rank: neuron_id, score, weight, core_score, core_rank.
// Example: run_cypher(driver, db, "semantic_group_drivers", semantic_group_id="digits-c3-5f2a9c1e/digits/fc/3#s0")
//   -> [{"neuron_id": "digits/conv3/7", "weight": 0.31, …}, …]
MATCH (s:SemanticGroup {id: $semantic_group_id})
MATCH (n:Neuron)-[d:DRIVES]->(s)
RETURN n.id AS neuron_id, d.score AS score, d.weight AS weight, d.core_score AS core_score,
  d.core_rank AS core_rank
ORDER BY core_rank, neuron_id
