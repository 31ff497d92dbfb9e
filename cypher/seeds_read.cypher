// All seeds ordered by id (nodes created only by an extraction have no question: skipped).
MATCH (s:Seed)
WHERE s.question IS NOT NULL
RETURN s.id AS id, s.question AS question, s.solution AS solution, s.answer AS answer,
       s.source AS source, s.metadata AS metadata
ORDER BY id
