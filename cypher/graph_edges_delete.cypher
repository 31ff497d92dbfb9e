// Rebuild: remove co-occurrence relationships that changed or vanished. $rows: [{source, target}]
UNWIND $rows AS row
MATCH (:Concept {id: row.source})-[r:CO_OCCURS]->(:Concept {id: row.target})
DELETE r
