"""Persistent LLM response cache: one SQLite file (WAL), keyed by everything that determines
a reply and nothing secret.

Only replies that validated are stored, so a bad reply is never replayed. The key is the
sha256 of the canonical JSON of: model, messages, schema name and schema, response-format
mode, temperature, max_tokens and seed. The API key and base URL are never part of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphgen.scrub import scrub
from graphgen.sqlitedb import connect, migrate

__all__ = ["ResponseCache", "CachedReply", "cache_key"]

# Files written before migrations were recorded already hold this table: IF NOT EXISTS.
MIGRATIONS = [("0001_responses", """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    value TEXT NOT NULL,
    raw TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
""")]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(
    *,
    model: str,
    messages: list[dict],
    schema_name: str,
    schema: dict | None,
    mode: str,
    temperature: float | None,
    max_tokens: int | None,
    seed: int | None,
    endpoint: str | None = None,
) -> str:
    material = {
        "v": 1,
        "model": model,
        "messages": messages,
        "schema_name": schema_name,
        "schema": schema,
        "mode": mode,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    if endpoint:  # another server with the same model name gives other replies
        material["endpoint"] = endpoint.rstrip("/")
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    value_json: str
    raw: str
    prompt_tokens: int
    completion_tokens: int


class ResponseCache:
    """Thread-safe enough for one event loop plus helper threads (one connection, a lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        migrate(self._conn, MIGRATIONS)

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value, raw, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return CachedReply(*row) if row else None

    def put(self, key: str, *, model: str, schema_name: str, value_json: str, raw: str,
            prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, schema_name, value_json, scrub(raw), prompt_tokens, completion_tokens, time.time()),
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM responses WHERE key = ?", (key,))

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
