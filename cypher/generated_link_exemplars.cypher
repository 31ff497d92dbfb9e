// Lineage: the seeds shown to the model as exemplars. $rows: [{id, target}]
UNWIND $rows AS row
MATCH (g:Generated {id: row.id})
MATCH (s:Seed {id: row.target})
MERGE (g)-[:USED_EXEMPLAR]->(s)
