// Puts a class on the per-neuron class lists of the neurons of its latest complete run ($run_id, which the writer
// picks: see write_class_latest.cypher): Neuron.class_ids (sorted class ids) and Neuron.class_groups (the neuron groups of
// that run holding the neuron, one count per class id). shared_neurons.cypher reads them, so it costs one read
// per neuron of a layer however many classes there are. Run write_class_neurons_clear.cypher first. The groups'
// members are read from NeuronGroup.neurons (their MEMBER_OF neurons, written with the group): loading the Neuron
// nodes, whose lists are what this writes, cost most of its time at hundreds of classes.
// Parameters: $class_id — "{model}/{class_index}"; $run_id — the run whose neurons list the class.
// Writes: true
// Returns: written — neurons listed (0 when the run has none).
// Example: run_cypher(driver, db, "write_class_neurons", class_id="digits/3", run_id="digits-c3-3520059de8")
//   -> [{"written": 57}]
MATCH (r:Run {id: $run_id})
MATCH (n:Neuron)-[:IN_CIRCUIT]->(r)
WITH r, collect(n) AS neurons
OPTIONAL MATCH (g:NeuronGroup)-[:IN_RUN]->(r)
WITH neurons, reduce(acc = [], ids IN collect(g.neurons) | acc + ids) AS members
UNWIND neurons AS n
WITH n, size([x IN members WHERE x = n.id]) AS groups, coalesce(n.class_ids, []) AS ids,
  coalesce(n.class_groups, []) AS counts
WITH n, groups, ids, counts, size([x IN ids WHERE x < $class_id]) AS at
SET n.class_ids = ids[..at] + [$class_id] + ids[at..], n.class_groups = counts[..at] + [groups] + counts[at..]
RETURN count(*) AS written
