// Rebuild: create co-occurrence relationships (source -> target as in ConceptEdge: the
// smaller id first, or the topic first for topic-kp). $rows: [{source, target, kind, count, weight}]
UNWIND $rows AS row
MATCH (a:Concept {id: row.source})
MATCH (b:Concept {id: row.target})
CREATE (a)-[:CO_OCCURS {kind: row.kind, count: row.count, weight: row.weight}]->(b)
