// The neuron groups each of some neurons belongs to, outside some runs: what the writer reads to find the groups
// of other classes that share neurons with a new run's groups (SHARES, written by write_shares.cypher).
// Parameters: $neurons — Neuron ids; $skip_runs — run ids whose groups are left out (the runs of the new run's class).
// Writes: false
// Returns: one row per neuron that has such groups: neuron, groups (NeuronGroup node ids), sizes (their n_neurons,
//   in the same order).
// Example: run_cypher(driver, db, "shares_memberships", neurons=["digits/conv2/14"], skip_runs=["digits-c3-3520059de8"])
//   -> [{"neuron": "digits/conv2/14", "groups": ["digits-c8-1cd422a888/conv2/g0"], "sizes": [4]}]
UNWIND $neurons AS id
MATCH (n:Neuron {id: id})-[:MEMBER_OF]->(g:NeuronGroup)
WHERE NOT g.run_id IN $skip_runs AND g.is_root = false
RETURN id AS neuron, collect(g.id) AS groups, collect(g.n_neurons) AS sizes
