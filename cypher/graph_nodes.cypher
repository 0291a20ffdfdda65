// Every node of the database with its labels and properties: the whole graph, to compare two stores (tests, audits).
// Parameters: none.
// Writes: false
// Returns: one row per node: labels (list), props (map).
// Example: run_cypher(driver, db, "graph_nodes") -> [{"labels": ["Model"], "props": {"id": "digits", ...}}, ...]
MATCH (n)
RETURN labels(n) AS labels, properties(n) AS props
