// All co-occurrence edges ordered by (source, target): the sampler's one streaming read.
MATCH (a:Concept)-[r:CO_OCCURS]->(b:Concept)
RETURN a.id AS source, b.id AS target, r.kind AS kind, r.count AS count, r.weight AS weight
ORDER BY source, target
