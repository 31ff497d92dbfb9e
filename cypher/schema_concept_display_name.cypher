// Schema: look concepts up by the name users see in Browser.
CREATE INDEX concept_display_name IF NOT EXISTS FOR (c:Concept) ON (c.display_name)
