// Lineage: the two seeds a fused question was made from. $rows: [{id, target}]
UNWIND $rows AS row
MATCH (g:Generated {id: row.id})
MATCH (s:Seed {id: row.target})
MERGE (g)-[:FUSED_FROM]->(s)
