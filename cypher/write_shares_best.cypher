// Raises NeuronGroup.shares_best, an upper bound of the rank key of the group's best SHARES pair (jaccard * 1e6 +
// shared, the order shared_groups.cypher ranks pairs by), to each row's key when that is higher. The top pairs of
// the store are among the groups of highest bound, so shared_groups reads a few hundred groups, not every SHARES.
// A deleted SHARES (its other group's run re-ingested) leaves the bound as it was: still an upper bound.
// Parameters: $rows — list of rows laid out as below: a NeuronGroup node id, the best key of its new SHARES.
// Row: [group, key]
// Writes: true
// Returns: written — groups updated or left (one per row).
// Example: run_cypher(driver, db, "write_shares_best", rows=[["digits-c3-5f2a9c1e/conv3/g1", 500003.0]])
UNWIND $rows AS row
MATCH (g:NeuronGroup {id: row[0]})
SET g.shares_best = CASE WHEN g.shares_best IS NULL OR g.shares_best < row[1] THEN row[1] ELSE g.shares_best END
RETURN count(*) AS written
