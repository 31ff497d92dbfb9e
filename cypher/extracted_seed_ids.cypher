// Ids of seeds that have an extraction (resume skips them).
MATCH (s:Seed)
WHERE s.extracted
RETURN s.id AS id
