// Remove the lineage relationships of generated rows about to be rewritten. $ids: [id]
UNWIND $ids AS gid
MATCH (:Generated {id: gid})-[r:BUILT_FROM|USED_EXEMPLAR|FUSED_FROM]->()
DELETE r
