// Rebuild: create co-occurrence relationships (source -> target as in ConceptEdge: the
// smaller id first, or the topic first for topic-kp). Grouped per source concept, so each
// source is looked up once. $rows: [{source, edges: [{target, kind, count, weight}]}]
UNWIND $rows AS row
MATCH (a:Concept {id: row.source})
UNWIND row.edges AS e
MATCH (b:Concept {id: e.target})
CREATE (a)-[:CO_OCCURS {kind: e.kind, count: e.count, weight: e.weight}]->(b)
