// Rebuild, step 1: the MENTIONS relationships as they are now.
MATCH (s:Seed)-[:MENTIONS]->(c:Concept)
RETURN s.id AS seed_id, c.id AS concept_id
