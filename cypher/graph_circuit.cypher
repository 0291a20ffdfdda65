// The circuit of a class as a graph to draw (Neo4j Browser): the class, its root group (LOGIT_OF) and every
// FEEDS edge between the neuron groups of its latest complete run (newest created_at, then completed_at, then
// run id). The same circuit as rows, one per edge: circuit_edges.cypher.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3".
// Returns: logit (path root group -LOGIT_OF-> class), feeds (path child group -FEEDS-> parent group), one row per
//   FEEDS edge of the run.
// Example: run(driver, db, "graph_circuit", class_id="digits/3")
//   -> [{"logit": <Path NeuronGroup-LOGIT_OF->Class>, "feeds": <Path NeuronGroup-FEEDS->NeuronGroup>}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true
WITH c, r
ORDER BY r.created_at DESC, r.completed_at DESC, r.id DESC
LIMIT 1
MATCH logit = (root:NeuronGroup)-[:LOGIT_OF]->(c)
WHERE root.run_id = r.id
MATCH feeds = (child:NeuronGroup)-[:FEEDS]->(:NeuronGroup)
WHERE child.run_id = r.id
RETURN logit, feeds
