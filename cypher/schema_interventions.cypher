// Schema for image-debugging results: Intervention ids are unique (and indexed), so re-running an intervention
// MERGEs onto the node it wrote before. Idempotent; run before write_interventions.cypher.
// Parameters: none.
// Example: run(driver, db, "schema_interventions")  (neurflow_graph.debugging.store_interventions runs it)
CREATE CONSTRAINT intervention_id IF NOT EXISTS FOR (n:Intervention) REQUIRE n.id IS UNIQUE
