// Schema of the NeurFlow graph store: uniqueness constraints and indexes, created before any write.
// Answers: nothing; it makes every `id` unique (and indexed) and indexes the run scope of run-owned nodes.
// Parameters: none.
// Writes: true
// Example: neurflow_graph.store.ensure_schema(driver, "neurflow")  (runs each statement; all are idempotent)
// Keep docs/schema.md and SCHEMA_VERSION in neurflow_graph/store/schema.py in step with this file.
CREATE CONSTRAINT model_id IF NOT EXISTS FOR (n:Model) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT layer_id IF NOT EXISTS FOR (n:Layer) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT class_id IF NOT EXISTS FOR (n:Class) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT neuron_id IF NOT EXISTS FOR (n:Neuron) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT semantic_group_id IF NOT EXISTS FOR (n:SemanticGroup) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT neuron_group_id IF NOT EXISTS FOR (n:NeuronGroup) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT patch_id IF NOT EXISTS FOR (n:Patch) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT schema_version_id IF NOT EXISTS FOR (n:SchemaVersion) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT intervention_id IF NOT EXISTS FOR (n:Intervention) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT evaluation_id IF NOT EXISTS FOR (n:Evaluation) REQUIRE n.id IS UNIQUE;
CREATE INDEX semantic_group_run IF NOT EXISTS FOR (n:SemanticGroup) ON (n.run_id);
CREATE INDEX neuron_group_run IF NOT EXISTS FOR (n:NeuronGroup) ON (n.run_id);
CREATE INDEX patch_run IF NOT EXISTS FOR (n:Patch) ON (n.run_id);
CREATE INDEX run_complete IF NOT EXISTS FOR (n:Run) ON (n.complete)
