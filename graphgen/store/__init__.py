"""Graph stores behind one interface, and the factory that picks one from settings."""

from __future__ import annotations

from graphgen.config import StoreSettings
from graphgen.store.base import GraphStats, GraphStore, StoreError
from graphgen.store.sqlite import SQLiteStore

__all__ = ["GraphStats", "GraphStore", "SQLiteStore", "StoreError", "open_store"]


def open_store(settings: StoreSettings) -> GraphStore:
    """The embedded SQLite file by default; Neo4j when settings.kind == 'neo4j'."""
    if settings.kind == "neo4j":
        if not settings.neo4j_uri:
            raise StoreError("Neo4j store selected but no URI given: set NEO4J_URI or --neo4j-uri")
        from graphgen.store.neo4j import Neo4jStore

        password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
        return Neo4jStore(
            settings.neo4j_uri, settings.neo4j_username, password, database=settings.neo4j_database
        )
    return SQLiteStore(settings.path)
