"""graphgen: seed math questions -> concept graph -> new questions with solutions.

The public API: records, settings, stores and the pipeline stages. Heavy pieces
(LLM client, embeddings) are imported from their modules when needed.
"""

from graphgen.config import Settings, load_settings
from graphgen.graph import build_graph
from graphgen.records import (
    Concept,
    ConceptEdge,
    ConceptSample,
    Extraction,
    FusionPair,
    GeneratedQuestion,
    SeedQuestion,
)
from graphgen.store import GraphStore, SQLiteStore, open_store

__all__ = [
    "Concept", "ConceptEdge", "ConceptSample", "Extraction", "FusionPair", "GeneratedQuestion",
    "GraphStore", "SQLiteStore", "SeedQuestion", "Settings", "build_graph", "load_settings",
    "open_store",
]
