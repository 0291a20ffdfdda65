// Links a new run's neuron groups to the groups of other classes' runs, in the same layer, whose member neurons
// overlap them enough: (a:NeuronGroup)-[:SHARES {jaccard, shared, neurons}]->(b:NeuronGroup), a the smaller node id
// (so the graph does not depend on the order runs were ingested in; queries read SHARES in either direction),
// jaccard = |A ∩ B| / |A ∪ B| of their neuron sets, shared = |A ∩ B|, neurons the ids of A ∩ B (sorted). Only pairs at or above the writer's floor are
// written (neurflow_graph/store/writer.py SHARES_FLOOR); shared_groups.cypher reads them. Deleted with either
// group (a re-ingest deletes its run's groups first), so re-running an ingest converges.
// Parameters: $rows — list of rows laid out as below: the two NeuronGroup node ids (one of the new run, one of
//   another class's run; the smaller first), the Jaccard index (float), the number of neurons in both, their ids.
// Row: [a, b, jaccard, shared, neurons]
// Writes: true
// Returns: written — relationships created.
// Example: run_cypher(driver, db, "write_shares",
//   rows=[["digits-c3-5f2a9c1e/conv3/g1", "digits-c8-1cd422a888/conv3/g0", 0.5, 3, ["digits/conv3/1", …]]])
UNWIND $rows AS row
MATCH (a:NeuronGroup {id: row[0]})
MATCH (b:NeuronGroup {id: row[1]})
CREATE (a)-[:SHARES {jaccard: row[2], shared: row[3], neurons: row[4]}]->(b)
RETURN count(*) AS written
