// Writes the Layer nodes of a model (shared by every run of that model) and their OF_MODEL relationship.
// Parameters: $model_id — model id (its name); $rows — list of rows, each a list laid out as below.
// Row: [id, name]   (id is "{model}/{layer}")
// Writes: true
// Returns: written — rows written (equals size($rows) when the Model exists); nodes, relationships — graph elements it created or merged
// Example: run_cypher(driver, db, "write_layers", model_id="digits", rows=[["digits/conv3", "conv3"]])
MATCH (m:Model {id: $model_id})
UNWIND $rows AS row
MERGE (l:Layer {id: row[0]})
ON CREATE SET l.model = $model_id, l.name = row[1]
MERGE (l)-[:OF_MODEL]->(m)
RETURN count(*) AS written, count(*) AS nodes, count(*) AS relationships
