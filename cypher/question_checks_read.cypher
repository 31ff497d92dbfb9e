// All question checks, ordered by row id.
MATCH (c:QuestionCheck)
RETURN c.record AS record
ORDER BY c.row_id
