// The indexes present in the store (constraint-owned ones included).
// Parameters: none.
// Writes: false
// Returns: one row per index: name, labels (list), properties (list).
// Example: run_cypher(driver, db, "schema_indexes") -> [{"name": "patch_run", "labels": ["Patch"], "properties": ["run_id"]}, …]
SHOW INDEXES YIELD name, labelsOrTypes, properties
RETURN name, labelsOrTypes AS labels, properties
