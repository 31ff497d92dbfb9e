// Rebuild: remove MENTIONS that the extractions no longer give. $rows: [{seed_id, concept_id}]
UNWIND $rows AS row
MATCH (:Seed {id: row.seed_id})-[m:MENTIONS]->(:Concept {id: row.concept_id})
DELETE m
