// Every relationship of the database: its type, the ids of its ends and its properties (with graph_nodes: the whole
// graph, to compare two stores).
// Parameters: none.
// Writes: false
// Returns: one row per relationship: type, start, end (the `id` of each end node), props (map).
// Example: run_cypher(driver, db, "graph_relationships") -> [{"type": "FOR_CLASS", "start": "digits-c3-…", "end": "digits/3",
//   "props": {}}, ...]
MATCH (a)-[r]->(b)
RETURN type(r) AS type, a.id AS start, b.id AS end, properties(r) AS props
