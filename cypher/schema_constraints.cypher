// The uniqueness constraints present in the store (to check that the schema was created).
// Parameters: none.
// Writes: false
// Returns: one row per constraint: name, labels (list), properties (list).
// Example: run_cypher(driver, db, "schema_constraints") -> [{"name": "neuron_id", "labels": ["Neuron"], "properties": ["id"]}, …]
SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties
RETURN name, labelsOrTypes AS labels, properties
