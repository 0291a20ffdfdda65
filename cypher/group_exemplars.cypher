// The exemplar patches of one neuron group (those nearest its cluster centre, best first), with where each
// patch comes from and its thumbnail (a path relative to the run's bundle folder, `bundle_path`).
// Parameters: $group_id — NeuronGroup node id "{run_id}/{group_id}", e.g. "digits-c3-3520059de8/conv3/g0".
// Writes: false
// Returns: one row per exemplar, by rank: rank (0 = nearest the centre), patch_id, image_index, image_sha256,
//   granularity, x0, y0, x1, y1 (pixel box in the source image), thumbnail, run_id, bundle_path.
// Example: run_cypher(driver, db, "group_exemplars", group_id="digits-c3-3520059de8/conv3/g0")
//   -> [{"rank": 0, "patch_id": 576, "image_index": 9, "thumbnail": "thumbnails/p576.png", …}, …]
MATCH (g:NeuronGroup {id: $group_id})
MATCH (g)-[:IN_RUN]->(r:Run)
MATCH (g)-[e:EXEMPLAR]->(p:Patch)
RETURN e.rank AS rank, p.patch_id AS patch_id, p.image_index AS image_index, p.image_sha256 AS image_sha256,
  p.granularity AS granularity, p.x0 AS x0, p.y0 AS y0, p.x1 AS x1, p.y1 AS y1, p.thumbnail AS thumbnail,
  r.id AS run_id, r.bundle_path AS bundle_path
ORDER BY rank
