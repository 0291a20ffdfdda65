// The runs of one class with the fields that decide which is its latest complete run: what the writer reads to
// flag it (Run.latest, the one definition every class-level query reads) and to leave the class's own runs out
// of SHARES.
// Parameters: $class_id — "{model}/{class_index}", e.g. "digits/3".
// Writes: false
// Returns: one row per run of the class, in no particular order: run_id, complete, created_at, completed_at.
// Example: run_cypher(driver, db, "class_runs", class_id="digits/3")
//   -> [{"run_id": "digits-c3-3520059de8", "complete": True, "created_at": "2026-11-22T10:00:00Z",
//        "completed_at": "2026-11-22T10:05:01.123456+00:00"}]
MATCH (r:Run)-[:FOR_CLASS]->(:Class {id: $class_id})
RETURN r.id AS run_id, r.complete = true AS complete, r.created_at AS created_at, r.completed_at AS completed_at
