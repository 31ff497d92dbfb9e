"""SQLite files, in one place: how graphgen opens them and how their schemas evolve.

Used by the workspace store (store/sqlite.py), the LLM response cache (llm/cache.py) and the
embedding cache (embed.py).

- `connect` opens a file in autocommit mode (callers open transactions explicitly) with WAL
  journaling (readers never block the writer), synchronous=NORMAL (durable at each WAL
  checkpoint, safe against corruption) and a busy timeout (two processes on one file wait
  for each other instead of failing at once). A file that is not a usable SQLite database
  (truncated, another program's) is a `StageError` naming it, one line for the user.
- `migrate` applies append-only, named migrations (as simonw/llm's `migrations.py`): each
  runs once, in its own transaction, and is recorded in `_migrations`; an old file upgrades
  in place. Never edit or reorder a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from graphgen.stage import StageError

MIGRATIONS_TABLE = "_migrations"


def connect(path: str | Path, *, foreign_keys: bool = False, busy_timeout_s: float = 10.0,
            check_same_thread: bool = False) -> sqlite3.Connection:
    """A connection with graphgen's PRAGMAs; parent directories are created.

    `check_same_thread` is off by default: graphgen hands a connection to a helper thread
    (e.g. the LLM runner's loop) while the owner waits, never to two threads at once; callers
    that share one across threads hold their own lock.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=check_same_thread,
                         timeout=busy_timeout_s)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        db.close()
        raise StageError(f"{path}: not a usable SQLite file ({exc}): it may be truncated or not graphgen's; "
                         "move it aside and run again (a removed LLM cache only means its calls are paid again)"
                         ) from None
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT; ROLLBACK on any exception (KeyboardInterrupt included).

    IMMEDIATE takes the write lock up front, so two writers queue (busy timeout) instead of
    one failing at commit time.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at TEXT)")
    return [r[0] for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def migrate(db: sqlite3.Connection, migrations: Sequence[tuple[str, str]]) -> list[str]:
    """Apply the named migrations not yet recorded, in order; returns the names applied.

    Each migration is a script of `;`-separated statements run in one transaction with its
    record, so a crash leaves it applied entirely or not at all.
    """
    _refuse_foreign(db, migrations)
    done = set(applied_migrations(db))
    applied = []
    for name, script in migrations:
        if name in done:
            continue
        with transaction(db):
            # Re-check inside the write lock: another process may have just applied it.
            if db.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", (name,)).fetchone():
                continue
            for statement in _statements(script):
                db.execute(statement)
            db.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, datetime('now'))", (name,))
        applied.append(name)
    return applied


def _refuse_foreign(db: sqlite3.Connection, migrations: Sequence[tuple[str, str]]) -> None:
    """Stop before writing anything to a SQLite file of another program (it has tables, none
    of which graphgen's migrations know, and no migration record): no tables are added to it."""
    import re

    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'")]
    if not tables or MIGRATIONS_TABLE in tables:
        return
    scripts = " ".join(script for _, script in migrations)
    if any(re.search(rf"\b{re.escape(t)}\b", scripts) for t in tables):
        return  # a graphgen file from before migrations were recorded: it upgrades in place
    path = db.execute("PRAGMA database_list").fetchone()[2] or "the database"
    shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
    raise StageError(f"{path}: a SQLite file of another program (tables: {shown}); graphgen leaves it "
                     "untouched: give graphgen a file of its own (--db / --cache)")


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (a trigger body holds ';' of its own)."""
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                yield buffer
            buffer = ""
