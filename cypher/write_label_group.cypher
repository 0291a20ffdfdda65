// Stores a neuron group's label in one transaction: label, description, label_model, label_prompt_version
// and label_key (the hash of exemplars, prompt version and model that `label` compares to skip it next time).
// Parameters: $id — NeuronGroup node id; $label — short label; $description — one paragraph; $model —
//   the model that answered; $prompt_version — the prompt's version; $key — the cache key.
// Writes: true
// Returns: written — 1, or 0 when no such group is stored (e.g. its run was loaded again meanwhile).
// Example: run_cypher(driver, db, "write_label_group", id="digits-c3-5f2a9c1e/conv3/g1", label="vertical strokes",
//   description="Bright vertical strokes on a dark ground.", model="gpt-4o", prompt_version="label-v1", key="9f…")
MATCH (g:NeuronGroup {id: $id})
SET g.label = $label, g.description = $description, g.label_model = $model,
  g.label_prompt_version = $prompt_version, g.label_key = $key
RETURN count(g) AS written
