// The databases the server holds (Neo4j 5 and the embedded ArcadeDB both answer it; run it on `system`).
// Used to tell a user whose NEO4J_DATABASE (or default) does not exist which ones do.
// Parameters: none.
// Writes: false
// Returns: name, aliases (list of other names it answers to), one row per database, by name.
// Example: run_cypher(driver, "system", "list_databases") -> [{"name": "neo4j", "aliases": []}, {"name": "system", …}]
SHOW DATABASES YIELD name, aliases
RETURN name, aliases
ORDER BY name
