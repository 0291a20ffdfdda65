// The neuron groups of some SHARES pairs, when they are in their class's latest complete run (NeuronGroup.latest):
// what shared_groups checks the pairs of the layers' top lists (shares_top.cypher) against, and where it takes the
// classes, sizes and member neurons of the pairs it answers.
// Parameters: $groups — NeuronGroup node ids.
// Writes: false
// Returns: one row per group found with latest = true (others are left out): id, run_id, class_id, n_neurons,
//   members (member neuron ids: the group's `neurons`, by channel).
// Example: run_cypher(driver, db, "shares_top_groups", groups=["digits-c3-3520059de8/conv2/g0"])
//   -> [{"id": "digits-c3-3520059de8/conv2/g0", "run_id": "digits-c3-3520059de8", "class_id": "digits/3",
//        "n_neurons": 4, "members": ["digits/conv2/2", …]}]
UNWIND $groups AS id
MATCH (g:NeuronGroup {id: id})
WHERE g.latest = true
MATCH (g)-[:IN_RUN]->(:Run)-[:FOR_CLASS]->(c:Class)
RETURN g.id AS id, g.run_id AS run_id, c.id AS class_id, g.n_neurons AS n_neurons, g.neurons AS members
