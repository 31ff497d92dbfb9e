// Every stored extraction ordered by seed id.
MATCH (s:Seed)
WHERE s.extracted
RETURN s.id AS seed_id, s.extracted_topics AS topics,
       s.extracted_knowledge_points AS knowledge_points, s.extracted_model AS model,
       s.extracted_prompt_version AS prompt_version, s.extracted_usage AS usage
ORDER BY seed_id
