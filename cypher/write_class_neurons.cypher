// Puts a class on the per-neuron class lists of the neurons of its latest complete run (newest created_at, then
// completed_at, then run id): Neuron.class_ids (sorted class ids) and Neuron.class_groups (the neuron groups of
// that run holding the neuron, one count per class id). shared_neurons.cypher reads them, so it costs one read
// per neuron of a layer however many classes there are. Run write_class_neurons_clear.cypher first.
// Parameters: $class_id — "{model}/{class_index}".
// Returns: written — neurons listed (0 when the class has no complete run).
// Example: run(driver, db, "write_class_neurons", class_id="digits/3") -> [{"written": 57}]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true
WITH r
ORDER BY r.created_at DESC, r.completed_at DESC, r.id DESC
LIMIT 1
MATCH (n:Neuron)-[:IN_CIRCUIT]->(r)
WITH r, collect(n) AS neurons
OPTIONAL MATCH (g:NeuronGroup)-[:IN_RUN]->(r)
OPTIONAL MATCH (m:Neuron)-[:MEMBER_OF]->(g)
WITH neurons, collect(m.id) AS members
UNWIND neurons AS n
WITH n, size([x IN members WHERE x = n.id]) AS groups, coalesce(n.class_ids, []) AS ids,
  coalesce(n.class_groups, []) AS counts
WITH n, groups, ids, counts, size([x IN ids WHERE x < $class_id]) AS at
SET n.class_ids = ids[..at] + [$class_id] + ids[at..], n.class_groups = counts[..at] + [groups] + counts[at..]
RETURN count(*) AS written
