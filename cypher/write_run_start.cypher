// Opens the ingest of one run: its Model, Class and Run nodes, with the Run marked incomplete.
// The run's properties and its FOR_CLASS/OF_MODEL relationships are replaced (SET r = $run_props; the old ones
// deleted, the new ones created), so a re-ingest leaves no stale property or link to another class behind;
// `complete` (and `latest`) stay false until write_run_complete, the last transaction of an ingest.
// Parameters: $run_id — run id; $run_props — map of flattened run.json properties (scalars and lists; includes id
//   and weights_sha256, the digest of the model's weights that the run id hashes, on the Run, not the shared Model;
//   and request_key when run.json has one, which complete_runs reads back to skip a class before scheduling);
//   $model_props — map {id, name, preset, weights, num_classes}; $class_props — map {id, model, index, name}.
// Writes: true
// Returns: run_id; nodes, relationships — graph elements it merged (Model, Class, Run; OF_MODEL twice, FOR_CLASS).
// Example: run_cypher(driver, db, "write_run_start", run_id="digits-c3-5f2a9c1e", run_props={...},
//   model_props={"id": "digits", ...}, class_props={"id": "digits/3", "model": "digits", "index": 3, "name": "3"})
MERGE (m:Model {id: $model_props.id})
SET m += $model_props
MERGE (c:Class {id: $class_props.id})
SET c += $class_props
MERGE (c)-[:OF_MODEL]->(m)
MERGE (r:Run {id: $run_id})
SET r = $run_props, r.complete = false, r.latest = false
WITH r, c, m
OPTIONAL MATCH (r)-[old:FOR_CLASS|OF_MODEL]->()
DELETE old
WITH DISTINCT r, c, m
CREATE (r)-[:FOR_CLASS]->(c)
CREATE (r)-[:OF_MODEL]->(m)
RETURN r.id AS run_id, 3 AS nodes, 3 AS relationships
