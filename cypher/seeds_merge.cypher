// Insert or update seeds by id. $rows: [{id, question, solution, answer, source}]
UNWIND $rows AS row
MERGE (s:Seed {id: row.id})
SET s.question = row.question,
    s.solution = row.solution,
    s.answer = row.answer,
    s.source = row.source
