// One class by its id, with its runs, as list_classes.cypher gives it: how many, how many complete, and the
// latest complete one. What the helpers look a class id up with, so naming a class costs the same at 1000
// classes as at one (list_classes reads every class).
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3".
// Writes: false
// Returns: one row (none when the class is not in the store): class_id, model, index, name, n_runs, n_complete,
//   latest_run (null when no run of the class is complete).
// Example: run_cypher(driver, db, "class_info", class_id="digits/3")
//   -> [{"class_id": "digits/3", "model": "digits", "index": 3, "name": "3", "n_runs": 2, "n_complete": 2,
//        "latest_run": "digits-c3-4254e914ed"}]
MATCH (c:Class {id: $class_id})
OPTIONAL MATCH (r:Run)-[:FOR_CLASS]->(c)
WITH c, count(r) AS n_runs, collect(CASE WHEN r.complete = true THEN r.id END) AS complete_runs,
  collect(CASE WHEN r.complete = true AND r.latest = true THEN r.id END) AS latest
RETURN c.id AS class_id, c.model AS model, c.index AS index, c.name AS name, n_runs,
  size(complete_runs) AS n_complete, head(latest) AS latest_run
