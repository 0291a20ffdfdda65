// One page of the index of `neurflow-graph serve`: the classes matching $q (a lowercase part of the name, the
// index, or the class id; null: every class), sorted by $sort ("index", "name", "groups" or "date"; $descending
// reverses the whole order) and cut to $skip/$limit here, so the page sends and builds one page of rows however
// many classes the store holds (class_index.cypher lists them all).
// Parameters: $q (lowercase text or null), $sort, $descending, $skip, $limit.
// Defaults: $q = null, $sort = "index", $descending = false, $skip = 0, $limit = 50
// Writes: false
// Returns: the columns of class_index.cypher (class_id, model, index, name, n_runs, n_complete, latest_run,
//   n_groups, n_edges, created_at, completed_at), one row per class of the page, in the page's order.
// Example: run(driver, db, "class_index_page", q="3", sort="groups", descending=True, skip=0, limit=50)
//   -> [{"class_id": "digits/3", "model": "digits", "index": 3, "name": "3", "n_runs": 1, "n_complete": 1,
//        "latest_run": "digits-c3-4254e914ed", "n_groups": 9, "n_edges": 14, …}]
MATCH (c:Class)
WHERE $q IS NULL OR toLower(c.name) CONTAINS $q OR toString(c.index) = $q OR toLower(c.id) = $q
OPTIONAL MATCH (l:Run)-[:FOR_CLASS]->(c)
WHERE l.complete = true AND l.latest = true
WITH c, l, CASE $sort WHEN "name" THEN toLower(c.name) WHEN "date" THEN coalesce(l.completed_at, "") END AS text_key,
  CASE $sort WHEN "groups" THEN -coalesce(l.n_neuron_groups, 0) END AS number_key
ORDER BY CASE WHEN $descending THEN null ELSE text_key END, CASE WHEN $descending THEN null ELSE number_key END,
  CASE WHEN $descending THEN null ELSE c.model END, CASE WHEN $descending THEN null ELSE c.index END,
  CASE WHEN $descending THEN text_key END DESC, CASE WHEN $descending THEN number_key END DESC,
  CASE WHEN $descending THEN c.model END DESC, CASE WHEN $descending THEN c.index END DESC
SKIP $skip LIMIT $limit
WITH collect([c, l]) AS page
UNWIND range(0, size(page) - 1) AS position
WITH page[position][0] AS c, page[position][1] AS l, position
OPTIONAL MATCH (r:Run)-[:FOR_CLASS]->(c)
WITH c, l, position, count(r) AS n_runs, sum(CASE WHEN r.complete = true THEN 1 ELSE 0 END) AS n_complete
RETURN c.id AS class_id, c.model AS model, c.index AS index, c.name AS name, n_runs, n_complete,
  l.id AS latest_run, l.n_neuron_groups AS n_groups, l.n_group_edges AS n_edges, l.created_at AS created_at,
  l.completed_at AS completed_at
ORDER BY position
