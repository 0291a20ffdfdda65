// Creates the Patch nodes of a run (image patches: pixel box, granularity, source image, thumbnail).
// Parameters: $run_id — run id; $rows — list of rows laid out as below (id is "{run_id}/p{patch_id}",
//   thumbnail a path relative to the bundle, or null).
// Row: [id, patch_id, image_index, image_sha256, granularity, x0, y0, x1, y1, thumbnail]
// Writes: true
// Returns: written — patches created; nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_patches", run_id="digits-c3-5f2a9c1e",
//   rows=[["digits-c3-5f2a9c1e/p0", 0, 0, "ab…", 1.0, 0, 0, 32, 32, None]])
UNWIND $rows AS row
CREATE (p:Patch {id: row[0], run_id: $run_id, patch_id: row[1], image_index: row[2], image_sha256: row[3],
  granularity: row[4], x0: row[5], y0: row[6], x1: row[7], y1: row[8], thumbnail: row[9]})
RETURN count(*) AS written, count(*) AS nodes, 0 AS relationships
