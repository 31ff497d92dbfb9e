// Rebuild: link each seed to the concepts it newly mentions, with the surface form it used.
// The store sends only pairs it has just read as absent in the same transaction, so CREATE
// (cheaper than MERGE) cannot duplicate. Grouped per seed, so each seed is looked up once.
// $rows: [{seed_id, mentions: [{concept_id, surface}]}]
UNWIND $rows AS row
MATCH (s:Seed {id: row.seed_id})
UNWIND row.mentions AS m
MATCH (c:Concept {id: m.concept_id})
CREATE (s)-[:MENTIONS {surface: m.surface}]->(c)
