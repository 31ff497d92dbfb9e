// Record (or replace) each seed's extraction on its Seed node: the surface names exactly as
// extracted, the model and prompt version. The concept graph is derived from these by
// graph_* statements. $rows: [{seed_id, topics, knowledge_points, model, prompt_version, usage}]
UNWIND $rows AS row
MERGE (s:Seed {id: row.seed_id})
SET s.extracted = true,
    s.extracted_topics = row.topics,
    s.extracted_knowledge_points = row.knowledge_points,
    s.extracted_model = row.model,
    s.extracted_prompt_version = row.prompt_version,
    s.extracted_usage = row.usage
