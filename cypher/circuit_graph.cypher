// The circuit of a class as a graph to draw (Neo4j Browser's graph view): the latest complete run's neuron
// groups, the FEEDS edges between them and the root group's LOGIT_OF edge to the class, as nodes and
// relationships (paste it into Browser; the project's style is docker/style.grass).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $run_id — a run of that class, or null
//   (the latest complete run, as in circuit_edges.cypher).
// Defaults: $run_id = null
// Writes: false
// Returns: one row per FEEDS edge, by parent layer then parent then |weight|: child, feeds (the relationship),
//   parent (NeuronGroup nodes), then the root's logit (LOGIT_OF relationship) and the class node.
// Example: run_cypher(driver, db, "circuit_graph", class_id="digits/3", run_id=None)
//   -> [{"child": Node(NeuronGroup conv3/g1), "feeds": Relationship(FEEDS weight 0.42), "parent": …,
//        "logit": Relationship(LOGIT_OF), "class": Node(Class digits/3)}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND (r.id = $run_id OR ($run_id IS NULL AND r.latest = true))
WITH c, r
MATCH (root:NeuronGroup)-[logit:LOGIT_OF]->(c)
WHERE root.run_id = r.id
MATCH (child:NeuronGroup)-[feeds:FEEDS]->(parent:NeuronGroup)
WHERE child.run_id = r.id
RETURN child, feeds, parent, logit, c AS class
ORDER BY parent.layer_index, parent.group_id, abs(feeds.weight) DESC, child.group_id
