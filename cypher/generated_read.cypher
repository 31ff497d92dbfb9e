// All generated questions ordered by id (every property: the store rebuilds the record).
MATCH (g:Generated)
RETURN properties(g) AS props
ORDER BY g.id
