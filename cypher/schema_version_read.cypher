// Which schema version the store was written with (null for an empty store).
// Parameters: $key — the SchemaVersion node id, 'neurflow-graph'.
// Returns: version (int or null), written_by (neurflow-graph version that wrote it, or null).
// Example: run(driver, db, "schema_version_read", key="neurflow-graph") -> [{"version": 1, "written_by": "0.1.0"}]
OPTIONAL MATCH (v:SchemaVersion {id: $key})
RETURN v.version AS version, v.written_by AS written_by
