// Insert or replace a model's pass rate on a question (solve; difficulty), keyed by
// question and model, each linked to its question when it is in the store:
// (:Seed|:Generated)-[:HAS_PASS_RATE]->(:PassRate {model, pass_rate}).
// $rows: [{id, question_id, props}] where id is "<question id>|<model>".
UNWIND $rows AS row
MERGE (p:PassRate {id: row.id})
SET p = row.props
WITH p, row
OPTIONAL MATCH (s:Seed {id: row.question_id})
OPTIONAL MATCH (g:Generated {id: row.question_id})
WITH p, coalesce(s, g) AS q
FOREACH (_ IN CASE WHEN q IS NULL THEN [] ELSE [1] END | MERGE (q)-[:HAS_PASS_RATE]->(p))
