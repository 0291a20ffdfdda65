// Counts the relationships of the whole store by type (to compare two states of a store).
// Parameters: none.
// Writes: false
// Returns: one row per type: type, count.
// Example: run_cypher(driver, db, "relationship_counts") -> [{"type": "DRIVES", "count": 310}, …]
MATCH ()-[r]->()
RETURN type(r) AS type, count(*) AS count
ORDER BY type
