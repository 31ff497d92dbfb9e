// All filter decisions, ordered by row id.
MATCH (d:FilterDecision)
RETURN properties(d) AS props
ORDER BY d.row_id
