// Two runs (usually of the same class) compared edge by edge. Groups are matched exactly as in
// compare_run_groups.cypher (within a layer, one to one, greedily by decreasing Jaccard of the member-neuron
// sets, >= $min_jaccard); an edge child -> parent of run A is the same edge as B's edge between the groups its
// two ends matched. It is 'same' when |weight_b - weight_a| <= $tolerance, else 'changed'; an edge of A with no such edge in B (an end
// unmatched, or the matched groups not linked) 'disappeared'; an edge of B no edge of A maps to 'appeared'.
// Parameters: $run_a — the reference run id; $run_b — the run compared with it; $min_jaccard — float in [0, 1];
//   $tolerance — float >= 0, the largest weight difference still reported as 'same'.
// Defaults: $min_jaccard = 0.5, $tolerance = 1e-9
// Writes: false
// Returns: one row per edge, by child layer index then parent and child: child_layer, child_layer_index, child_a,
//   parent_a (group ids in run A, null for an appeared edge), child_b, parent_b (the matched groups in run B,
//   null when an end is unmatched), weight_a, weight_b (null where absent), delta (weight_b - weight_a, or
//   null), status. No row when either run is not stored.
// Example: run_cypher(driver, db, "compare_run_edges", run_a="digits-c3-3520059de8", run_b="digits-c3-4254e914ed",
//   min_jaccard=0.5, tolerance=1e-9)
//   -> [{"child_a": "conv3/g0", "parent_a": "fc/g0", "child_b": "conv3/g0", "parent_b": "fc/g0",
//        "weight_a": 0.73, "weight_b": 0.90, "delta": 0.18, "status": "changed", …}, …]
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
OPTIONAL MATCH (ca:NeuronGroup)-[fa:FEEDS]->(pa:NeuronGroup)
WHERE pa.run_id = $run_a
WITH matches, collect(CASE WHEN fa IS NOT NULL THEN {c: ca.group_id, p: pa.group_id, layer: ca.layer,
  li: ca.layer_index, w: fa.weight} END) AS ea
OPTIONAL MATCH (cb:NeuronGroup)-[fb:FEEDS]->(pb:NeuronGroup)
WHERE pb.run_id = $run_b
WITH matches, ea, collect(CASE WHEN fb IS NOT NULL THEN {c: cb.group_id, p: pb.group_id, layer: cb.layer,
  li: cb.layer_index, w: fb.weight} END) AS eb
WITH eb, [e IN ea | {e: e, mc: head([m IN matches WHERE m.a = e.c | m.b]),
  mp: head([m IN matches WHERE m.a = e.p | m.b])}] AS mapped
WITH eb, [x IN mapped | {e: x.e, mc: x.mc, mp: x.mp,
  hit: head([y IN eb WHERE x.mc IS NOT NULL AND x.mp IS NOT NULL AND y.c = x.mc AND y.p = x.mp])}] AS mapped
UNWIND [x IN mapped | {layer: x.e.layer, li: x.e.li, child_a: x.e.c, parent_a: x.e.p, child_b: x.mc,
    parent_b: x.mp, weight_a: x.e.w, weight_b: x.hit.w}]
  + [y IN eb WHERE NOT any(x IN mapped WHERE x.hit IS NOT NULL AND x.hit.c = y.c AND x.hit.p = y.p)
    | {layer: y.layer, li: y.li, child_a: null, parent_a: null, child_b: y.c, parent_b: y.p, weight_a: null,
       weight_b: y.w}] AS row
RETURN row.layer AS child_layer, row.li AS child_layer_index, row.child_a AS child_a, row.parent_a AS parent_a,
  row.child_b AS child_b, row.parent_b AS parent_b, row.weight_a AS weight_a, row.weight_b AS weight_b,
  row.weight_b - row.weight_a AS delta,
  CASE WHEN row.weight_b IS NULL THEN 'disappeared' WHEN row.weight_a IS NULL THEN 'appeared'
    WHEN abs(row.weight_b - row.weight_a) <= $tolerance THEN 'same' ELSE 'changed' END AS status
ORDER BY child_layer_index, coalesce(parent_a, parent_b), coalesce(child_a, child_b), child_b
