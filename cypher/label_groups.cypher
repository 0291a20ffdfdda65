// The neuron groups of a run with their exemplar patches and the label stored on them (if any): what
// `label` shows the model, and what it compares with to skip a group labelled already.
// Parameters: $run_id — run id.
// Writes: false
// Returns: one row per group: id (node id), group_id, layer, layer_index, group_index, is_root, exemplars (a list of
//   [rank, patch_id, thumbnail] with thumbnail relative to the Run's bundle_path; unordered), label,
//   description, label_model, label_prompt_version, label_key (null when not labelled).
// Example: run_cypher(driver, db, "label_groups", run_id="digits-c3-5f2a9c1e")
//   -> [{"id": "digits-c3-5f2a9c1e/conv3/g1", "group_id": "conv3/g1", "exemplars": [[0, 9, "thumbnails/p9.png"]], …}]
MATCH (g:NeuronGroup {run_id: $run_id})
OPTIONAL MATCH (g)-[e:EXEMPLAR]->(p:Patch)
WITH g, collect(CASE WHEN p IS NULL THEN NULL ELSE [e.rank, p.patch_id, p.thumbnail] END) AS exemplars
RETURN g.id AS id, g.group_id AS group_id, g.layer AS layer, g.layer_index AS layer_index,
  g.group_index AS group_index, g.is_root AS is_root,
  exemplars, g.label AS label, g.description AS description, g.label_model AS label_model,
  g.label_prompt_version AS label_prompt_version, g.label_key AS label_key
ORDER BY layer_index, group_id
