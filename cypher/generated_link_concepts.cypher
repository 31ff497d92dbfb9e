// Lineage: the concepts a generated question was built from. $rows: [{id, target}]
UNWIND $rows AS row
MATCH (g:Generated {id: row.id})
MATCH (c:Concept {id: row.target})
MERGE (g)-[:BUILT_FROM]->(c)
