// The top list of SHARES pairs each layer keeps (Layer.shares_top_*, write_shares_top.cypher): the layer's best
// SHARES_TOP (500) pairs of groups of different classes by Jaccard, then shared neurons, then group ids, over
// every pair the writer ever wrote (superseded and incomplete runs included: readers check the groups' `latest`).
// shared_groups without a class reads these lists instead of the SHARES of the groups they join; the writer reads
// them to merge a new run's pairs in.
// Parameters: $layer — a layer name ("conv2") or Layer id ("digits/conv2"), or null for every layer.
// Defaults: $layer = null
// Writes: false
// Returns: one row per layer: layer_id, layer (its name), a, b (NeuronGroup node ids of each pair, a in the run of
//   the smaller id), jaccard, shared (parallel lists, best pair first; empty when the layer has no pair), dropped
//   (true when pairs fell off the list's end: it then holds every pair ranking before its last entry, no other).
// Example: run_cypher(driver, db, "shares_top", layer="conv2")
//   -> [{"layer_id": "digits/conv2", "layer": "conv2", "a": ["digits-c3-3520059de8/conv2/g0"],
//        "b": ["digits-c8-1cd422a888/conv2/g0"], "jaccard": [0.5], "shared": [3], "dropped": false}]
MATCH (l:Layer)
WHERE $layer IS NULL OR l.id = $layer OR l.name = $layer
RETURN l.id AS layer_id, l.name AS layer, coalesce(l.shares_top_a, []) AS a, coalesce(l.shares_top_b, []) AS b,
  coalesce(l.shares_top_jaccard, []) AS jaccard, coalesce(l.shares_top_shared, []) AS shared,
  coalesce(l.shares_top_dropped, false) AS dropped
ORDER BY layer_id
