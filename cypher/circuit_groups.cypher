// The circuit of a class, group by group: the neuron groups of ONE complete run of the class, layer by layer
// from the logit down, with their member neurons, exemplar patches (best first) and concept labels.
// The run is $run_id when given, else the latest complete run of the class (as in circuit_edges.cypher).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null
//   for the latest complete one.
// Defaults: $run_id = null
// Writes: false
// Returns: one row per group, by layer index then group index: run_id, bundle_path (the run's bundle folder
//   when ingested), id (node id), group_id, layer, layer_index, group_index, is_root, n_neurons, neurons
//   (neuron ids, by channel), exemplars (maps {rank, patch_id, thumbnail}, rank 0 first; thumbnail is a path
//   relative to bundle_path, or null), label, description (NeuronGroup properties written by concept labelling, or null).
// The member neurons are the group's `neurons` property (written with it, by channel), not its MEMBER_OF edges: those
// lead to Neuron nodes, whose per-class lists (write_class_neurons.cypher) make them slow to load at 1000 classes.
// Example: run_cypher(driver, db, "circuit_groups", class_id="digits/3", run_id=None)
//   -> [{"group_id": "fc/g0", "layer": "fc", "is_root": True, "neurons": ["digits/fc/3"],
//        "exemplars": [{"rank": 0, "patch_id": 236, "thumbnail": "thumbnails/p236.png"}, …], "label": None, …}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
WITH r
MATCH (g:NeuronGroup)-[:IN_RUN]->(r)
CALL {
  WITH g
  OPTIONAL MATCH (g)-[e:EXEMPLAR]->(p:Patch)
  WITH e, p
  ORDER BY e.rank
  RETURN collect(CASE WHEN p IS NOT NULL THEN {rank: e.rank, patch_id: p.patch_id, thumbnail: p.thumbnail} END)
    AS exemplars
}
RETURN r.id AS run_id, r.bundle_path AS bundle_path, g.id AS id, g.group_id AS group_id, g.layer AS layer,
  g.layer_index AS layer_index, g.group_index AS group_index, g.is_root AS is_root, g.n_neurons AS n_neurons,
  g.neurons AS neurons, exemplars, g.label AS label, g.description AS description
ORDER BY layer_index, group_index
