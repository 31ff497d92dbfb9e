// Insert or update seeds by id. $rows: [{id, question, solution, answer, source, metadata}]
// (metadata: the row's other fields as JSON text, or null)
// A seed whose question text changed loses its extraction (it was made from the old text),
// so the next extract redoes it.
UNWIND $rows AS row
MERGE (s:Seed {id: row.id})
WITH s, row, (s.question IS NOT NULL AND s.question <> row.question) AS changed
SET s.question = row.question,
    s.solution = row.solution,
    s.answer = row.answer,
    s.source = row.source,
    s.metadata = row.metadata
FOREACH (_ IN CASE WHEN changed THEN [1] ELSE [] END |
  REMOVE s.extracted, s.extracted_topics, s.extracted_knowledge_points, s.extracted_model,
         s.extracted_prompt_version, s.extracted_usage)
