// Schema: one Concept per id ('topic:<canonical name>' or 'kp:<canonical name>').
CREATE CONSTRAINT concept_id IF NOT EXISTS FOR (c:Concept) REQUIRE c.id IS UNIQUE
