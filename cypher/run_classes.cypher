// The class of each of some runs.
// Parameters: $runs — run ids.
// Writes: false
// Returns: one row per run found: run_id, class_id.
// Example: run_cypher(driver, db, "run_classes", runs=["digits-c3-3520059de8"])
//   -> [{"run_id": "digits-c3-3520059de8", "class_id": "digits/3"}]
UNWIND $runs AS id
MATCH (r:Run {id: id})-[:FOR_CLASS]->(c:Class)
RETURN r.id AS run_id, c.id AS class_id
