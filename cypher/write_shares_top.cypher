// Sets the top list of SHARES pairs of some layers (Layer.shares_top_a, _b, _jaccard, _shared: parallel lists, best
// pair first; shares_top_dropped), which the writer merges a new run's pairs into (neurflow_graph/store/writer.py
// merge_shares_top) and shares_top.cypher reads. Written before the run completes: a crash leaves the run
// incomplete, and its re-run merges the same pairs again (a pair replaces itself), so the lists converge.
// Parameters: $rows — list of rows laid out as below: a Layer id, the pairs' group_a ids, group_b ids, Jaccard
//   indexes, shared neuron counts, and whether pairs fell off the list's end.
// Row: [layer_id, a, b, jaccard, shared, dropped]
// Writes: true
// Returns: written — layers set.
// Example: run_cypher(driver, db, "write_shares_top",
//   rows=[["digits/conv2", ["digits-c3-3520059de8/conv2/g0"], ["digits-c8-1cd422a888/conv2/g0"], [0.5], [3], False]])
UNWIND $rows AS row
MATCH (l:Layer {id: row[0]})
SET l.shares_top_a = row[1], l.shares_top_b = row[2], l.shares_top_jaccard = row[3], l.shares_top_shared = row[4],
  l.shares_top_dropped = row[5]
RETURN count(*) AS written
