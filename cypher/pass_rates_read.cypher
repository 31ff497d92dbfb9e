// All pass rates, ordered by question id, then model.
MATCH (p:PassRate)
RETURN properties(p) AS props
ORDER BY p.question_id, p.model
