// Takes a class off the per-neuron class lists (Neuron.class_ids, Neuron.class_groups) of every neuron of its
// runs: the first half of refreshing what shared_neurons.cypher reads (write_class_neurons.cypher is the second).
// Parameters: $class_id — "{model}/{class_index}".
// Writes: true
// Returns: cleared — neurons whose lists held the class.
// Example: run_cypher(driver, db, "write_class_neurons_clear", class_id="digits/3") -> [{"cleared": 57}]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
MATCH (n:Neuron)-[:IN_CIRCUIT]->(r)
WITH DISTINCT n
WHERE $class_id IN coalesce(n.class_ids, [])
WITH n, [i IN range(0, size(n.class_ids) - 1) WHERE n.class_ids[i] <> $class_id] AS keep
SET n.class_groups = [i IN keep | n.class_groups[i]], n.class_ids = [i IN keep | n.class_ids[i]]
RETURN count(*) AS cleared
