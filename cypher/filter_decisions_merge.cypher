// Insert or replace filter's decision per row id (graphgen filter; graphgen.status reads it),
// each linked to its row when the row is in the store:
// (:Seed|:Generated)-[:HAS_FILTER_DECISION]->(:FilterDecision).
// $rows: [{row_id, props}] where props holds row_id, row_kind, decision and the reason as JSON text.
UNWIND $rows AS row
MERGE (d:FilterDecision {row_id: row.row_id})
SET d = row.props
WITH d, row
OPTIONAL MATCH (s:Seed {id: row.row_id})
OPTIONAL MATCH (g:Generated {id: row.row_id})
WITH d, coalesce(s, g) AS q
FOREACH (_ IN CASE WHEN q IS NULL THEN [] ELSE [1] END | MERGE (q)-[:HAS_FILTER_DECISION]->(d))
