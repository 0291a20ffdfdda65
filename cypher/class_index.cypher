// Every class in the store with the size and status of its latest complete run: the class list of
// `fetch_class_index` (one row per class; the explorer's index page asks the store for one page instead, with
// class_index_page.cypher).
// Parameters: none.
// Writes: false
// Returns: one row per class, by model then index: class_id, model, index, name, n_runs, n_complete,
//   latest_run (null when no run of the class is complete), n_groups and n_edges (its neuron groups and group
//   edges, as recorded when its ingest completed), created_at, completed_at.
// Example: run(driver, db, "class_index")
//   -> [{"class_id": "digits/3", "model": "digits", "index": 3, "name": "3", "n_runs": 1, "n_complete": 1,
//        "latest_run": "digits-c3-4254e914ed", "n_groups": 9, "n_edges": 14, …}, …]
MATCH (c:Class)
OPTIONAL MATCH (r:Run)-[:FOR_CLASS]->(c)
WITH c, count(r) AS n_runs, collect(CASE WHEN r.complete = true THEN r.id END) AS complete_runs,
  collect(CASE WHEN r.complete = true AND r.latest = true THEN [r.id, r.n_neuron_groups, r.n_group_edges,
    r.created_at, r.completed_at] END) AS latest
WITH c, n_runs, size(complete_runs) AS n_complete, head(latest) AS l
RETURN c.id AS class_id, c.model AS model, c.index AS index, c.name AS name, n_runs, n_complete,
  l[0] AS latest_run, l[1] AS n_groups, l[2] AS n_edges, l[3] AS created_at, l[4] AS completed_at
ORDER BY model, index
