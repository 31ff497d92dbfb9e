// Rebuild: drop concepts no extraction mentions any more. $keep: [concept id]
MATCH (c:Concept)
WHERE NOT c.id IN $keep
DETACH DELETE c
