// Neuron groups shared across classes: pairs of groups of different classes, in the same layer, whose member
// neurons overlap, ranked by the Jaccard index |A ∩ B| / |A ∪ B| of their neuron sets (then by shared neurons).
// Each class is represented by its latest complete run (NeuronGroup.latest, Run.latest: see
// write_class_latest.cypher); root groups (the class logits) are left out. Each unordered pair appears once
// (group_a is in the run with the smaller id). The pairs are the SHARES relationships the writer keeps
// (write_shares.cypher): every pair with Jaccard >= the writer's floor, 0.3 (neurflow_graph/store/writer.py
// SHARES_FLOOR). Pairs below the floor are not stored, so a $min_jaccard below it answers as at the floor: the top
// pairs by Jaccard among those >= 0.3.
// `run_query` (and so the CLI's `query shared_groups` and fetch_shared_groups) answers first from what the writer keeps
// for it: with $class_id, the class's SHARES (shares_of_class.cypher); without, the layers' top lists
// (shares_top.cypher, 500 pairs a layer), which tell the top pairs of the store exactly unless superseded runs fill
// them or $limit reaches past them. This file is the direct read, and the answer when the lists cannot tell:
// with $class_id the pairs are read from that class's groups only. Without, from the $candidates latest groups of
// highest NeuronGroup.shares_best (an upper bound of the key jaccard * 1e6 + shared of each group's best pair,
// write_shares_best.cypher), keeping the pairs whose key is above `bound`, the next group's: those are every pair
// of the store above it. `run_query` (and so the CLI's `query shared_groups` and fetch_shared_groups) ranks them in
// Python, and reads 4x the candidates while fewer than $limit pairs are above the bound (then it is exact).
// Parameters: $min_jaccard — float in [0, 1], pairs below it are dropped; $layer — a layer name ("conv2") or
//   Layer id ("digits/conv2"), or null for every layer; $class_id — keep only pairs with a group of this class
//   ("digits/3"), or null; $limit — int, pairs returned; $candidates — int, groups read first without $class_id.
// Defaults: $min_jaccard = 0.5, $layer = null, $class_id = null, $limit = 100, $candidates = 300
// Writes: false
// Returns: run directly, one row (none when nothing matches): bound (-1.0 when every group was read), max_pairs
//   ($limit), candidates, pairs (a list of [group, other group, its run, the other's run, layer, jaccard, shared,
//   n, other n, shared neuron ids]; a pair may come twice), classes (a list of [run_id, class_id]).
//   Through run_query (the query's answer): one row per pair, by Jaccard (then shared neurons) descending, then
//   group ids: layer, class_a, group_a, class_b, group_b (NeuronGroup node ids), jaccard, shared (neurons in both),
//   n_a, n_b (group sizes), shared_neurons (ids, sorted).
// Example: run_cypher(driver, db, "shared_groups", min_jaccard=0.3, layer=None, class_id=None, limit=10, candidates=300)
//   -> [{"bound": -1.0, "max_pairs": 10, "candidates": 300, "pairs": [["digits-c3-3520059de8/conv2/g0", …]], …}]
//   run_query(conn, "shared_groups", min_jaccard=0.3, limit=10)
//   -> [{"layer": "conv2", "class_a": "digits/3", "group_a": "digits-c3-3520059de8/conv2/g0",
//        "class_b": "digits/8", "group_b": "digits-c8-1cd422a888/conv2/g0", "jaccard": 0.5, "shared": 3, …}, …]
CALL {
  UNWIND CASE WHEN $class_id IS NULL THEN [] ELSE [$class_id] END AS class_id
  MATCH (:Class {id: class_id})<-[:FOR_CLASS]-(r:Run)
  WHERE r.complete = true AND r.latest = true
  MATCH (x:NeuronGroup)-[:IN_RUN]->(r)
  RETURN x, -1.0 AS bound
  UNION ALL
  UNWIND CASE WHEN $class_id IS NULL THEN [true] ELSE [] END AS every
  MATCH (x:NeuronGroup)
  WHERE x.latest = every AND x.shares_best >= $min_jaccard * 1e6
  WITH x
  ORDER BY x.shares_best DESC
  LIMIT $candidates + 1
  WITH collect(x) AS xs
  UNWIND xs[..$candidates] AS x
  RETURN x, CASE WHEN size(xs) > $candidates THEN xs[size(xs) - 1].shares_best ELSE -1.0 END AS bound
}
WITH x, bound
WHERE x.is_root = false AND ($layer IS NULL OR x.layer = $layer OR $layer ENDS WITH '/' + x.layer)
OPTIONAL MATCH (x)-[s:SHARES]-(y:NeuronGroup)
WHERE y.latest = true AND s.jaccard >= $min_jaccard AND s.jaccard * 1e6 + s.shared > bound
WITH bound, collect(CASE WHEN s IS NULL THEN NULL ELSE [x.id, y.id, x.run_id, y.run_id, x.layer, s.jaccard, s.shared,
  x.n_neurons, y.n_neurons, s.neurons] END) AS pairs, collect(DISTINCT x.run_id) AS runs_x,
  collect(DISTINCT y.run_id) AS runs_y
UNWIND runs_x + runs_y AS run_id
MATCH (r:Run {id: run_id})-[:FOR_CLASS]->(c:Class)
RETURN bound, $limit AS max_pairs, $candidates AS candidates, pairs, collect(DISTINCT [run_id, c.id]) AS classes
