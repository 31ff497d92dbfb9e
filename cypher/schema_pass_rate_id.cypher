// Schema: one PassRate per (question, model); `id` is "<question id>|<model>".
CREATE CONSTRAINT pass_rate_id IF NOT EXISTS FOR (p:PassRate) REQUIRE p.id IS UNIQUE
