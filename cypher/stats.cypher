// Counts for `graphgen graph stats`: seeds, extracted seeds, concepts and edges per kind,
// generated questions.
RETURN
  COUNT { MATCH (s:Seed) WHERE s.question IS NOT NULL } AS seeds,
  COUNT { MATCH (s:Seed) WHERE s.extracted } AS extracted_seeds,
  COUNT { MATCH (g:Generated) } AS generated,
  COLLECT { MATCH (c:Concept) WITH c.kind AS kind, count(*) AS n RETURN [kind, n] } AS concepts,
  COLLECT { MATCH ()-[r:CO_OCCURS]->() WITH r.kind AS kind, count(*) AS n RETURN [kind, n] } AS edges
