// Rebuild: re-attach generated questions to concepts that were (re)created.
MATCH (g:Generated)
UNWIND g.concept_ids AS cid
MATCH (c:Concept {id: cid})
MERGE (g)-[:BUILT_FROM]->(c)
