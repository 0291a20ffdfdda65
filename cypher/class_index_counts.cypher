// The counts beside the index page of `neurflow-graph serve`: per model its classes, those with a complete
// run, and those matching $q (as class_index_page.cypher matches), aggregated here instead of listing every class.
// Parameters: $q (lowercase text or null).
// Defaults: $q = null
// Writes: false
// Returns: one row per model, by model: model, n_classes, n_complete (classes with a latest complete run),
//   n_matching.
// Example: run(driver, db, "class_index_counts", q="3")
//   -> [{"model": "digits", "n_classes": 4, "n_complete": 4, "n_matching": 1}]
MATCH (c:Class)
OPTIONAL MATCH (l:Run)-[:FOR_CLASS]->(c)
WHERE l.complete = true AND l.latest = true
WITH c, count(l) AS latest
RETURN c.model AS model, count(c) AS n_classes, sum(CASE WHEN latest > 0 THEN 1 ELSE 0 END) AS n_complete,
  sum(CASE WHEN $q IS NULL OR toLower(c.name) CONTAINS $q OR toString(c.index) = $q OR toLower(c.id) = $q
      THEN 1 ELSE 0 END) AS n_matching
ORDER BY model
