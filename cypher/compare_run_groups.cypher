// Two runs (usually of the same class, e.g. two seeds or two tau) compared group by group. Matching rule: groups
// of run A and run B in the same layer are paired by the Jaccard index of their member-neuron sets, one to one,
// greedily: candidate pairs (Jaccard > 0 and >= $min_jaccard) are taken by decreasing Jaccard (ties: smaller
// group id of A, then of B), skipping any whose group is already paired. Unmatched groups of A disappeared,
// unmatched groups of B appeared.
// compare_run_edges.cypher uses the same matching rule to compare the edges.
// Parameters: $run_a — the reference run id; $run_b — the run compared with it; $min_jaccard — float in [0, 1]
//   (1.0 matches only groups with identical neuron sets).
// Defaults: $min_jaccard = 0.5
// Writes: false
// Returns: one row per matched pair or unmatched group, by layer index then group: layer, layer_index, group_a,
//   group_b (group ids within their runs, null when unmatched), jaccard (null when unmatched), status
//   ('same': identical neurons, 'changed': matched but the neurons differ, 'disappeared', 'appeared'),
//   neurons_a, neurons_b (member neuron ids, null when absent). No row when either run is not stored.
// Example: run_cypher(driver, db, "compare_run_groups", run_a="digits-c3-3520059de8", run_b="digits-c3-4254e914ed",
//   min_jaccard=0.5)
//   -> [{"layer": "conv3", "group_a": "conv3/g0", "group_b": "conv3/g0", "jaccard": 0.75, "status": "changed", …}, …]
MATCH (ra:Run {id: $run_a})
MATCH (rb:Run {id: $run_b})
OPTIONAL MATCH (a:NeuronGroup)
WHERE a.run_id = ra.id
OPTIONAL MATCH (na:Neuron)-[:MEMBER_OF]->(a)
WITH rb, a, collect(na.id) AS an
OPTIONAL MATCH (b:NeuronGroup)
WHERE b.run_id = rb.id AND b.layer = a.layer
OPTIONAL MATCH (nb:Neuron)-[:MEMBER_OF]->(b)
WITH a, an, b, collect(nb.id) AS bn
WITH a, b, size([x IN an WHERE x IN bn]) AS inter, size(an) + size(bn) AS total
WITH collect(CASE WHEN inter > 0 AND toFloat(inter) / (total - inter) >= $min_jaccard
  THEN {a: a.group_id, b: b.group_id, j: toFloat(inter) / (total - inter)} END) AS pairs
UNWIND pairs AS p
WITH p
ORDER BY p.j DESC, p.a, p.b
WITH collect(p) AS ranked
WITH reduce(s = {ua: [], ub: [], m: []}, p IN ranked | CASE WHEN p.a IN s.ua OR p.b IN s.ub THEN s
  ELSE {ua: s.ua + p.a, ub: s.ub + p.b, m: s.m + [p]} END) AS greedy
WITH greedy.m AS matches
MATCH (g:NeuronGroup)
WHERE g.run_id = $run_a OR g.run_id = $run_b
CALL {
  WITH g
  MATCH (n:Neuron)-[:MEMBER_OF]->(g)
  WITH n
  ORDER BY n.channel
  RETURN collect(n.id) AS neurons
}
WITH g, neurons,
  head([m IN matches WHERE (g.run_id = $run_a AND m.a = g.group_id) OR (g.run_id = $run_b AND m.b = g.group_id)])
  AS m
WITH g.layer AS layer, g.layer_index AS layer_index, coalesce(m.a, CASE WHEN g.run_id = $run_a THEN g.group_id END)
  AS group_a, coalesce(m.b, CASE WHEN g.run_id = $run_b THEN g.group_id END) AS group_b, m.j AS jaccard,
  collect(CASE WHEN g.run_id = $run_a THEN neurons END) AS na, collect(CASE WHEN g.run_id = $run_b THEN neurons END)
  AS nb
RETURN layer, layer_index, group_a, group_b, jaccard,
  CASE WHEN group_b IS NULL THEN 'disappeared' WHEN group_a IS NULL THEN 'appeared'
    WHEN jaccard = 1.0 THEN 'same' ELSE 'changed' END AS status,
  head(na) AS neurons_a, head(nb) AS neurons_b
ORDER BY layer_index, coalesce(group_a, group_b), group_b
