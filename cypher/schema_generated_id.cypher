// Schema: one Generated question per id.
CREATE CONSTRAINT generated_id IF NOT EXISTS FOR (g:Generated) REQUIRE g.id IS UNIQUE
