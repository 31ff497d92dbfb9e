"""The embedded default store: one SQLite file (./graphgen.db unless told otherwise).

Schema changes are append-only, named migrations recorded in `_migrations` (as in
sqlite-utils), so an old workspace file upgrades in place. Every write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from graphgen.records import (
    Concept,
    ConceptEdge,
    ConceptKind,
    ConceptMerge,
    EdgeKind,
    Extraction,
    GeneratedQuestion,
    LLMUsage,
    Mention,
    SeedQuestion,
    FilterDecision,
    PassRate,
    QuestionCheck,
    SolveVerdict,
)
from graphgen.sqlitedb import connect, migrate, transaction
from graphgen.store.base import GraphStats, GraphStore, StoreError, storage_hint

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE seeds (
            id TEXT PRIMARY KEY, question TEXT NOT NULL, solution TEXT, answer TEXT,
            source TEXT NOT NULL DEFAULT '');
        CREATE TABLE extractions (
            seed_id TEXT PRIMARY KEY, topics TEXT NOT NULL, knowledge_points TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '', prompt_version TEXT NOT NULL DEFAULT '', usage TEXT);
        CREATE TABLE mentions (
            seed_id TEXT NOT NULL, concept_id TEXT NOT NULL, PRIMARY KEY (concept_id, seed_id));
        CREATE INDEX mentions_seed ON mentions (seed_id);
        CREATE TABLE concepts (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
            display_name TEXT NOT NULL, frequency INTEGER NOT NULL);
        CREATE TABLE edges (
            source TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL,
            count INTEGER NOT NULL, weight REAL NOT NULL, PRIMARY KEY (source, target));
        CREATE TABLE generated (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL);
        CREATE TABLE generated_links (
            generated_id TEXT NOT NULL, role TEXT NOT NULL, target_id TEXT NOT NULL,
            PRIMARY KEY (generated_id, role, target_id));
        CREATE INDEX generated_links_target ON generated_links (target_id);
        """,
    ),
    (
        # A seed whose question text changed must not keep the concepts extracted from its
        # old text: the extraction is dropped with the change, so the next extract redoes it.
        "0002_seed_text_change_drops_extraction",
        """
        CREATE TRIGGER seeds_text_changed AFTER UPDATE OF question ON seeds
        WHEN old.question IS NOT new.question
        BEGIN DELETE FROM extractions WHERE seed_id = new.id; END
        """,
    ),
    (
        "0003_solve_verdicts",
        """
        CREATE TABLE verdicts (
            question_id TEXT PRIMARY KEY, question_kind TEXT NOT NULL, method TEXT NOT NULL,
            pass_rate REAL NOT NULL, verified INTEGER, record TEXT NOT NULL);
        """,
    ),
    (
        "0004_concept_merges",
        """
        CREATE TABLE concept_merges (
            alias_id TEXT PRIMARY KEY, canonical_id TEXT NOT NULL, similarity REAL);
        ALTER TABLE concepts ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
        """,
    ),
    (
        # Row status (graphgen.status): the rule's verification status beside each verdict,
        # and filter's decision per row. Older verdict rows keep status NULL (read from
        # their flags by graphgen.status.verification).
        "0005_row_status",
        """
        ALTER TABLE verdicts ADD COLUMN status TEXT;
        CREATE TABLE filter_decisions (
            row_id TEXT PRIMARY KEY, row_kind TEXT NOT NULL, decision TEXT NOT NULL, record TEXT NOT NULL);
        """,
    ),
    (
        # A seed row's other fields (MATH level/type, Minerva type, ...), as JSON.
        "0006_seed_metadata",
        """
        ALTER TABLE seeds ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
        """,
    ),
    (
        # Row status (graphgen.status): `graphgen check`'s result per row, and each model's
        # pass rate per question (keyed by model: a reference model never replaces another's).
        "0007_question_checks",
        """
        CREATE TABLE question_checks (
            row_id TEXT PRIMARY KEY, row_kind TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL);
        CREATE TABLE pass_rates (
            question_id TEXT NOT NULL, model TEXT NOT NULL, pass_rate REAL NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (question_id, model));
        """,
    ),
]


class SQLiteStore(GraphStore):
    def __init__(self, path: str | Path = "graphgen.db"):
        self.path = Path(path)
        try:
            # run_jobs may call sinks on its loop thread (in Jupyter) while the caller
            # blocks, so the connection is never used by two threads at once.
            self.db = connect(self.path, foreign_keys=True)
            migrate(self.db, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            hint = storage_hint(exc)
            if hint:
                raise StoreError(f"{self.path}: {exc}; {hint}") from None
            raise StoreError(f"{self.path}: cannot open as a graphgen SQLite store ({exc})") from None
        except OSError as exc:  # e.g. its directory cannot be created
            raise StoreError(f"{self.path}: {exc.strerror}; {storage_hint(exc) or 'check the path'}") from None

    # --- plumbing ---------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction. A write that fails for want of space or permission (SQLite has
        already rolled back by itself) is raised as a StoreError naming the file and what
        to do, never as a later "cannot rollback" that hides the cause."""
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.OperationalError as exc:
            if self.db.in_transaction:  # e.g. COMMIT itself failed
                self.db.execute("ROLLBACK")
            hint = storage_hint(exc)
            if hint is None:
                raise
            raise StoreError(f"{self.path}: {exc}; {hint}") from exc

    def close(self) -> None:
        self.db.close()

    # --- seeds and extractions -----------------------------------------------------------
    def add_seeds(self, seeds: Iterable[SeedQuestion]) -> int:
        rows = [(s.id, s.question, s.solution, s.answer, s.source, json.dumps(s.metadata, ensure_ascii=False))
                for s in seeds]
        with self._tx():
            self.db.executemany(
                "INSERT INTO seeds (id, question, solution, answer, source, metadata) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET "
                "question=excluded.question, solution=excluded.solution, "
                "answer=excluded.answer, source=excluded.source, metadata=excluded.metadata",
                rows,
            )
        return len(rows)

    def seeds(self, ids: Iterable[str] | None = None) -> Iterator[SeedQuestion]:
        cols = "id, question, solution, answer, source, metadata"
        if ids is None:
            cursor = self.db.execute(f"SELECT {cols} FROM seeds ORDER BY id")
        else:
            wanted = sorted(set(ids))
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (id TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM _ids")
            self.db.executemany("INSERT INTO _ids VALUES (?)", ((i,) for i in wanted))
            cursor = self.db.execute(f"SELECT {cols} FROM seeds JOIN _ids USING (id) ORDER BY id")
        for id_, question, solution, answer, source, metadata in cursor:
            yield SeedQuestion(id=id_, question=question, solution=solution, answer=answer, source=source,
                               metadata=json.loads(metadata or "{}"))

    def add_extractions(self, extractions: Iterable[Extraction]) -> int:
        rows = [
            (
                e.seed_id,
                json.dumps(e.topics, ensure_ascii=False),
                json.dumps(e.knowledge_points, ensure_ascii=False),
                e.model,
                e.prompt_version,
                e.usage.model_dump_json() if e.usage else None,
            )
            for e in extractions
        ]
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO extractions VALUES (?,?,?,?,?,?)", rows)
        return len(rows)

    def extracted_seed_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT seed_id FROM extractions")}

    def extractions(self) -> Iterator[Extraction]:
        cursor = self.db.execute(
            "SELECT seed_id, topics, knowledge_points, model, prompt_version, usage "
            "FROM extractions ORDER BY seed_id"
        )
        for seed_id, topics, kps, model, version, usage in cursor:
            yield Extraction(
                seed_id=seed_id,
                topics=json.loads(topics),
                knowledge_points=json.loads(kps),
                model=model,
                prompt_version=version,
                usage=LLMUsage.model_validate_json(usage) if usage else None,
            )

    # --- the concept graph -----------------------------------------------------------------
    def set_concept_merges(self, merges: Iterable[ConceptMerge]) -> int:
        rows = [(m.alias_id, m.canonical_id, m.similarity) for m in merges]
        with self._tx():
            self.db.execute("DELETE FROM concept_merges")
            self.db.executemany("INSERT INTO concept_merges VALUES (?,?,?)", rows)
        return len(rows)

    def concept_merges(self) -> list[ConceptMerge]:
        cursor = self.db.execute("SELECT alias_id, canonical_id, similarity FROM concept_merges ORDER BY alias_id")
        return [ConceptMerge(alias_id=a, canonical_id=c, similarity=s) for a, c, s in cursor]

    def replace_graph(self, concepts: Sequence[Concept], edges: Sequence[ConceptEdge],
                      mentions: Sequence[Mention]) -> None:
        with self._tx():
            self.db.execute("DELETE FROM mentions")
            self.db.execute("DELETE FROM concepts")
            self.db.execute("DELETE FROM edges")
            self.db.executemany(
                "INSERT INTO concepts VALUES (?,?,?,?,?,?)",
                ((c.id, c.kind.value, c.name, c.display_name, c.frequency,
                  json.dumps(c.aliases, ensure_ascii=False)) for c in concepts),
            )
            self.db.executemany(
                "INSERT INTO edges VALUES (?,?,?,?,?)",
                ((e.source, e.target, e.kind.value, e.count, e.weight) for e in edges),
            )
            self.db.executemany(
                "INSERT INTO mentions VALUES (?,?)", ((m.seed_id, m.concept_id) for m in mentions)
            )

    def concepts(self) -> Iterator[Concept]:
        cursor = self.db.execute(
            "SELECT c.id, c.kind, c.name, c.display_name, c.frequency, c.aliases, "
            "(SELECT json_group_array(seed_id) FROM "
            "  (SELECT seed_id FROM mentions m WHERE m.concept_id = c.id ORDER BY seed_id)) "
            "FROM concepts c ORDER BY c.id"
        )
        for id_, kind, name, display, freq, aliases, seeds in cursor:
            yield Concept(
                id=id_, kind=ConceptKind(kind), name=name, display_name=display,
                frequency=freq, seed_ids=json.loads(seeds), aliases=json.loads(aliases),
            )

    def edges(self) -> Iterator[ConceptEdge]:
        cursor = self.db.execute(
            "SELECT source, target, kind, count, weight FROM edges ORDER BY source, target"
        )
        for source, target, kind, count, weight in cursor:
            yield ConceptEdge.model_construct(
                source=source, target=target, kind=EdgeKind(kind), count=count, weight=weight,
                seed_ids=[],
            )

    def seed_concepts(self) -> Iterator[tuple[str, list[str]]]:
        cursor = self.db.execute(
            "SELECT seed_id, json_group_array(concept_id) FROM "
            "(SELECT seed_id, concept_id FROM mentions ORDER BY seed_id, concept_id) "
            "GROUP BY seed_id ORDER BY seed_id"
        )
        for seed_id, ids in cursor:
            yield seed_id, json.loads(ids)

    # --- generated questions ---------------------------------------------------------------
    def add_generated(self, rows: Iterable[GeneratedQuestion]) -> int:
        n = 0
        with self._tx():
            for row in rows:
                n += 1
                self.db.execute(
                    "INSERT OR REPLACE INTO generated VALUES (?,?,?,?)",
                    (row.id, row.kind, row.status, row.model_dump_json()),
                )
                self.db.execute("DELETE FROM generated_links WHERE generated_id = ?", (row.id,))
                links = (
                    [("built_from", c) for c in row.concept_ids]
                    + [("exemplar", s) for s in row.exemplar_seed_ids]
                    + [("fused_from", s) for s in row.seed_ids]
                )
                self.db.executemany(
                    "INSERT OR IGNORE INTO generated_links VALUES (?,?,?)",
                    ((row.id, role, target) for role, target in links),
                )
        return n

    def generated_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM generated WHERE status = 'ok'")}

    def generated(self) -> Iterator[GeneratedQuestion]:
        for (record,) in self.db.execute("SELECT record FROM generated ORDER BY id"):
            yield GeneratedQuestion.model_validate_json(record)

    # --- solve verdicts ---------------------------------------------------------------------
    def add_verdicts(self, verdicts: Iterable[SolveVerdict]) -> int:
        rows = [(v.question_id, v.question_kind, v.method, v.pass_rate,
                 None if v.verified is None else int(v.verified), v.model_dump_json(), v.status) for v in verdicts]
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO verdicts (question_id, question_kind, method, pass_rate, "
                                "verified, record, status) VALUES (?,?,?,?,?,?,?)", rows)
        return len(rows)

    def verdicts(self) -> Iterator[SolveVerdict]:
        for (record,) in self.db.execute("SELECT record FROM verdicts ORDER BY question_id"):
            yield SolveVerdict.model_validate_json(record)

    # --- filter decisions --------------------------------------------------------------------
    def add_filter_decisions(self, decisions: Iterable[FilterDecision]) -> int:
        rows = [(d.row_id, d.row_kind, d.decision, d.model_dump_json(exclude_none=True)) for d in decisions]
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO filter_decisions VALUES (?,?,?,?)", rows)
        return len(rows)

    def filter_decisions(self) -> Iterator[FilterDecision]:
        for (record,) in self.db.execute("SELECT record FROM filter_decisions ORDER BY row_id"):
            yield FilterDecision.model_validate_json(record)

    # --- question checks and pass rates ---------------------------------------------------------
    def add_checks(self, checks: Iterable[QuestionCheck]) -> int:
        rows = [(c.row_id, c.row_kind, c.status, c.model_dump_json(exclude_none=True)) for c in checks]
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO question_checks VALUES (?,?,?,?)", rows)
        return len(rows)

    def checks(self) -> Iterator[QuestionCheck]:
        for (record,) in self.db.execute("SELECT record FROM question_checks ORDER BY row_id"):
            yield QuestionCheck.model_validate_json(record)

    def add_pass_rates(self, rates: Iterable[PassRate]) -> int:
        rows = [(r.question_id, r.model, r.pass_rate, r.model_dump_json()) for r in rates]
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO pass_rates VALUES (?,?,?,?)", rows)
        return len(rows)

    def pass_rates(self) -> Iterator[PassRate]:
        for (record,) in self.db.execute("SELECT record FROM pass_rates ORDER BY question_id, model"):
            yield PassRate.model_validate_json(record)

    # --- misc ---------------------------------------------------------------------------------
    def stats(self) -> GraphStats:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return GraphStats(
            seeds=one("SELECT count(*) FROM seeds"),
            extracted_seeds=one("SELECT count(*) FROM extractions"),
            concepts=dict(self.db.execute("SELECT kind, count(*) FROM concepts GROUP BY kind ORDER BY kind")),
            edges=dict(self.db.execute("SELECT kind, count(*) FROM edges GROUP BY kind ORDER BY kind")),
            generated=one("SELECT count(*) FROM generated"),
        )
