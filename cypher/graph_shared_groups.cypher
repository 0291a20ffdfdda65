// Neuron groups a class shares with another class, as a graph to draw (Neo4j Browser): each neuron that is a
// member of a group of both classes' latest complete runs (same layer), with its MEMBER_OF edges to the two
// groups. The Jaccard ranking of such pairs, as rows: shared_groups.cypher.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $other_class_id — another class, e.g.
//   "digits/8"; $limit — int, paths returned.
// Defaults: $limit = 200
// Writes: false
// Returns: shared (path group of $class_id <-MEMBER_OF- neuron -MEMBER_OF-> group of $other_class_id), one row per
//   (neuron, pair of groups).
// Example: run_cypher(driver, db, "graph_shared_groups", class_id="digits/3", other_class_id="digits/8", limit=200)
//   -> [{"shared": <Path NeuronGroup<-MEMBER_OF-Neuron-MEMBER_OF->NeuronGroup>}, …]
MATCH (ca:Class {id: $class_id})<-[:FOR_CLASS]-(ra:Run)
WHERE ra.complete = true AND ra.latest = true
WITH ra
MATCH (cb:Class {id: $other_class_id})<-[:FOR_CLASS]-(rb:Run)
WHERE rb.complete = true AND rb.latest = true
WITH ra, rb
MATCH shared = (a:NeuronGroup)<-[:MEMBER_OF]-(:Neuron)-[:MEMBER_OF]->(b:NeuronGroup)
WHERE a.run_id = ra.id AND b.run_id = rb.id AND a.is_root = false AND b.is_root = false AND a.layer = b.layer
RETURN shared
ORDER BY a.id, b.id
LIMIT $limit
