// Rebuild, step 1: the co-occurrence relationships as they are now.
MATCH (a:Concept)-[r:CO_OCCURS]->(b:Concept)
RETURN a.id AS source, b.id AS target, r.kind AS kind, r.count AS count, r.weight AS weight
