// Records the schema version of the store (once; a version mismatch is refused before this runs).
// Parameters: $key — 'neurflow-graph'; $version — int, SCHEMA_VERSION; $written_by — package version string.
// Writes: true
// Returns: version.
// Example: run_cypher(driver, db, "schema_version_write", key="neurflow-graph", version=1, written_by="0.1.0")
MERGE (v:SchemaVersion {id: $key})
ON CREATE SET v.version = $version, v.written_by = $written_by
RETURN v.version AS version
