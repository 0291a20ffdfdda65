// Which schema version the store was written with (null for an empty store).
// Parameters: $key — the SchemaVersion node id, 'neurflow-graph'.
// Writes: false
// Returns: version (as stored: an int unless something else wrote it), written_by (neurflow-graph version that
//   wrote it, or null), present (whether the SchemaVersion node exists, so a null version is told from none).
// Example: run_cypher(driver, db, "schema_version_read", key="neurflow-graph")
//   -> [{"version": 1, "written_by": "0.1.0", "present": true}]
OPTIONAL MATCH (v:SchemaVersion {id: $key})
RETURN v.version AS version, v.written_by AS written_by, v IS NOT NULL AS present
