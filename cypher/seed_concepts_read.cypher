// (seed id, sorted concept ids) for every seed that mentions a concept, ordered by seed id.
MATCH (s:Seed)-[:MENTIONS]->(c:Concept)
WITH s.id AS seed_id, c.id AS concept_id
ORDER BY seed_id, concept_id
RETURN seed_id, collect(concept_id) AS concept_ids
ORDER BY seed_id
