// Schema: look concepts up by canonical name (the exploration queries do).
CREATE INDEX concept_name IF NOT EXISTS FOR (c:Concept) ON (c.name)
