// Rebuild: write every concept (id, labels, names, frequency). Labels cannot be parameters
// in Cypher 5, so the FOREACH trick picks Topic or KnowledgePoint from the data.
// $rows: [{id, kind, name, display_name, frequency}]
UNWIND $rows AS row
MERGE (c:Concept {id: row.id})
SET c.kind = row.kind,
    c.name = row.name,
    c.display_name = row.display_name,
    c.frequency = row.frequency
FOREACH (_ IN CASE WHEN row.kind = 'topic' THEN [1] ELSE [] END | SET c:Topic)
FOREACH (_ IN CASE WHEN row.kind = 'kp' THEN [1] ELSE [] END | SET c:KnowledgePoint)
