// Stores how a child neuron group's feature builds its parent's on their FEEDS edge, in one transaction:
// relation, relation_model, relation_prompt_version and relation_key (the cache key `label` compares).
// Parameters: $child, $parent — NeuronGroup node ids; $relation — one or two sentences; $model — the model
//   that answered; $prompt_version — the prompt's version; $key — the cache key.
// Writes: true
// Returns: written — edges updated (0 when the edge is not stored).
// Example: run_cypher(driver, db, "write_label_relation", child="digits-c3-5f2a9c1e/conv2/g4",
//   parent="digits-c3-5f2a9c1e/conv3/g0", relation="The curved strokes close into the loop.", model="gpt-4o",
//   prompt_version="relation-v1", key="3c…")
MATCH (:NeuronGroup {id: $child})-[f:FEEDS]->(:NeuronGroup {id: $parent})
SET f.relation = $relation, f.relation_model = $model, f.relation_prompt_version = $prompt_version,
  f.relation_key = $key
RETURN count(f) AS written
