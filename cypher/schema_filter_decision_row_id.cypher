// Schema: one FilterDecision per row id.
CREATE CONSTRAINT filter_decision_row_id IF NOT EXISTS FOR (d:FilterDecision) REQUIRE d.row_id IS UNIQUE
