// Counts the nodes of the whole store by label (to compare two states of a store).
// Parameters: none.
// Writes: false
// Returns: one row per label: label, count.
// Example: run_cypher(driver, db, "node_counts") -> [{"label": "Neuron", "count": 40}, …]
MATCH (n)
UNWIND labels(n) AS label
RETURN label, count(*) AS count
ORDER BY label
