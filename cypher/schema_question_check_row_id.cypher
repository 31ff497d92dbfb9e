// Schema: one QuestionCheck (graphgen check) per row id.
CREATE CONSTRAINT question_check_row_id IF NOT EXISTS FOR (c:QuestionCheck) REQUIRE c.row_id IS UNIQUE
