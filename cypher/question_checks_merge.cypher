// Insert or replace `graphgen check`'s result per row id (graphgen.status reads it), each
// linked to its row when the row is in the store: (:Seed|:Generated)-[:HAS_CHECK]->(:QuestionCheck).
// $rows: [{row_id, props}] where props holds row_id, row_kind, status, answer_type,
// problem_type and the whole record as JSON text.
UNWIND $rows AS row
MERGE (c:QuestionCheck {row_id: row.row_id})
SET c = row.props
WITH c, row
OPTIONAL MATCH (s:Seed {id: row.row_id})
OPTIONAL MATCH (g:Generated {id: row.row_id})
WITH c, coalesce(s, g) AS q
FOREACH (_ IN CASE WHEN q IS NULL THEN [] ELSE [1] END | MERGE (q)-[:HAS_CHECK]->(c))
