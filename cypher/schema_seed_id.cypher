// Schema: one Seed per id (also the index every seed MERGE/MATCH uses).
CREATE CONSTRAINT seed_id IF NOT EXISTS FOR (s:Seed) REQUIRE s.id IS UNIQUE
