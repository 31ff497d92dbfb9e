// Insert or replace generated questions by id. Lists keep the lineage in order; the
// relationships (generated_link_*.cypher) make it walkable in Browser.
// $rows: [{id, props}] where props holds every GeneratedQuestion field (nulls remove).
UNWIND $rows AS row
MERGE (g:Generated {id: row.id})
SET g = row.props
