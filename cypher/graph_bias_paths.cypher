// The strongest bias paths of a class as a graph to draw (Neo4j Browser): chains of FEEDS edges from a neuron
// group up to the class logit in the latest complete run of the class, ranked by the product of |w| over their
// edges, as bias_paths.cypher ranks them (that file gives them as rows of group ids and weights, with filters).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3"; $limit — int, paths returned.
// Defaults: $limit = 10
// Writes: false
// Returns: path (source group -FEEDS-> … -FEEDS-> root group -LOGIT_OF-> class), strength (product of |w| of its
//   FEEDS edges), one row per path, strongest first.
// Example: run_cypher(driver, db, "graph_bias_paths", class_id="digits/3", limit=5)
//   -> [{"path": <Path NeuronGroup-FEEDS->…-LOGIT_OF->Class>, "strength": 0.23}, …]
MATCH (c:Class {id: $class_id})
MATCH (r:Run)-[:FOR_CLASS]->(c)
WHERE r.complete = true AND r.latest = true
WITH c, r
MATCH (root:NeuronGroup)-[:LOGIT_OF]->(c)
WHERE root.run_id = r.id
MATCH (g:NeuronGroup)
WHERE g.run_id = r.id AND g.is_root = false
MATCH path = (g)-[:FEEDS*1..]->(root)-[:LOGIT_OF]->(c)
WITH path, reduce(acc = 1.0, f IN [rel IN relationships(path) WHERE type(rel) = 'FEEDS'] | acc * abs(f.weight))
  AS strength
RETURN path, strength
ORDER BY strength DESC
LIMIT $limit
