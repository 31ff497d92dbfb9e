// The seeds with the given ids, ordered by id. $ids: [id]
UNWIND $ids AS wanted
MATCH (s:Seed {id: wanted})
WHERE s.question IS NOT NULL
RETURN DISTINCT s.id AS id, s.question AS question, s.solution AS solution,
       s.answer AS answer, s.source AS source, s.metadata AS metadata
ORDER BY id
