// Rebuild: link each seed to the concepts it newly mentions, with the surface form it used.
// The store sends only pairs it has just read as absent in the same transaction, so CREATE
// (cheaper than MERGE) cannot duplicate. $rows: [{seed_id, concept_id, surface}]
UNWIND $rows AS row
MATCH (s:Seed {id: row.seed_id})
MATCH (c:Concept {id: row.concept_id})
CREATE (s)-[:MENTIONS {surface: row.surface}]->(c)
