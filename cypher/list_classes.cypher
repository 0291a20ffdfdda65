// The classes in the store, each with its runs: how many, how many complete, and the latest complete one
// (Run.latest, which the writer keeps: see write_class_latest.cypher): the run every class-level query picks by default.
// Parameters: none.
// Writes: false
// Returns: one row per class, by model then index: class_id, model, index, name, n_runs, n_complete,
//   latest_run (null when no run of the class is complete).
// Example: run_cypher(driver, db, "list_classes")
//   -> [{"class_id": "digits/3", "model": "digits", "index": 3, "name": "3", "n_runs": 2, "n_complete": 2,
//        "latest_run": "digits-c3-4254e914ed"}, …]
MATCH (c:Class)
OPTIONAL MATCH (r:Run)-[:FOR_CLASS]->(c)
WITH c, count(r) AS n_runs, collect(CASE WHEN r.complete = true THEN r.id END) AS complete_runs,
  collect(CASE WHEN r.complete = true AND r.latest = true THEN r.id END) AS latest
RETURN c.id AS class_id, c.model AS model, c.index AS index, c.name AS name, n_runs,
  size(complete_runs) AS n_complete, head(latest) AS latest_run
ORDER BY model, index
