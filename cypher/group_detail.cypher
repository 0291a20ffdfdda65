// One neuron group with its run and class, its member neurons and label, and its FEEDS edges: the groups it
// feeds (parents, one layer up) and the groups feeding it (children), each with the edge's weight and relation.
// Parameters: $group_id — NeuronGroup node id "{run_id}/{group_id}", e.g. "digits-c3-3520059de8/conv2/g0".
// Writes: false
// Returns: one row (none when no such group): id, group_id, layer, layer_index, group_index, is_root, n_neurons,
//   neurons, label, description, run_id, latest, complete, bundle_path, class_id, class_name, parents and children
//   (lists of [node id, group_id, layer, weight, n_edges, label, relation]).
// Example: run(driver, db, "group_detail", group_id="digits-c3-3520059de8/conv2/g0")
//   -> [{"group_id": "conv2/g0", "layer": "conv2", "parents": [["digits-c3-3520059de8/conv3/g1", "conv3/g1", …]], …}]
MATCH (g:NeuronGroup {id: $group_id})-[:IN_RUN]->(r:Run)-[:FOR_CLASS]->(c:Class)
OPTIONAL MATCH (g)-[f:FEEDS]->(p:NeuronGroup)
WITH g, r, c, collect(CASE WHEN p IS NULL THEN NULL ELSE [p.id, p.group_id, p.layer, f.weight, f.n_edges, p.label,
  f.relation] END) AS parents
OPTIONAL MATCH (ch:NeuronGroup)-[f2:FEEDS]->(g)
WITH g, r, c, parents, collect(CASE WHEN ch IS NULL THEN NULL ELSE [ch.id, ch.group_id, ch.layer, f2.weight,
  f2.n_edges, ch.label, f2.relation] END) AS children
RETURN g.id AS id, g.group_id AS group_id, g.layer AS layer, g.layer_index AS layer_index,
  g.group_index AS group_index, g.is_root AS is_root, g.n_neurons AS n_neurons, g.neurons AS neurons,
  g.label AS label, g.description AS description, r.id AS run_id, r.latest AS latest, r.complete AS complete,
  r.bundle_path AS bundle_path, c.id AS class_id, c.name AS class_name, parents, children
