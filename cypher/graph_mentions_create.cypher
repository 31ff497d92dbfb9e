// Rebuild: link each seed to the concepts it mentions, with the surface form it used.
// $rows: [{seed_id, concept_id, surface}]
UNWIND $rows AS row
MATCH (s:Seed {id: row.seed_id})
MATCH (c:Concept {id: row.concept_id})
MERGE (s)-[m:MENTIONS]->(c)
SET m.surface = row.surface
