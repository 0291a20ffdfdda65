// The concept patches of one neuron: for every complete run holding it, each of its semantic groups with its
// first patches (the patches of the concept, as recorded) and their thumbnails.
// Parameters: $neuron_id — "{model}/{layer}/{channel}", e.g. "digits/conv2/14"; $per_group — int, the most
//   patches returned per semantic group.
// Defaults: $per_group = 6
// Writes: false
// Returns: one row per (semantic group, patch), by class, run, semantic group index, then the patch's place in
//   the group: class_id, class_name, run_id, latest, bundle_path, semantic_group (sg id), group_index, n_patches,
//   rank, patch_id, thumbnail (relative to bundle_path; only exemplar patches have one), image_index, x0, y0, x1, y1
//   (the patch's pixel box in its image).
// Example: run(driver, db, "neuron_patches", neuron_id="digits/conv2/14", per_group=6)
//   -> [{"class_id": "digits/3", "semantic_group": "digits/conv2/14#s0", "rank": 0, "patch_id": 236, …}, …]
MATCH (n:Neuron {id: $neuron_id})-[:HAS_SEMANTIC_GROUP]->(s:SemanticGroup)
MATCH (r:Run {id: s.run_id})-[:FOR_CLASS]->(c:Class)
WHERE r.complete = true
UNWIND range(0, size(s.patch_ids) - 1) AS rank
WITH c, r, s, rank
WHERE rank < $per_group
MATCH (p:Patch)
WHERE p.run_id = r.id AND p.patch_id = s.patch_ids[rank]
RETURN c.id AS class_id, c.name AS class_name, r.id AS run_id, r.latest = true AS latest,
  r.bundle_path AS bundle_path, s.sg_id AS semantic_group, s.group_index AS group_index,
  size(s.patch_ids) AS n_patches, rank, p.patch_id AS patch_id,
  p.thumbnail AS thumbnail, p.image_index AS image_index, p.x0 AS x0, p.y0 AS y0, p.x1 AS x1, p.y1 AS y1
ORDER BY class_id, run_id, group_index, rank
