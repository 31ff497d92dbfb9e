"""The graph-store interface. Two implementations: SQLiteStore (embedded default) and
Neo4jStore. Pipeline code talks only to this interface: no SQL or Cypher outside stores.

Model: seeds; extractions (one per seed: which concepts it mentions, with the model and
prompt version that produced them); the concept graph derived from the mentions (concept
nodes with frequency, co-occurrence edges with count and weight); generated questions with
lineage. The graph is always *recomputed* from the extractions (`graphgen.graph.rebuild(store)`
builds it, `replace_graph` stores it), so ingesting the same seeds twice changes nothing.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from graphgen.records import (
    Concept,
    ConceptEdge,
    ConceptMerge,
    Extraction,
    GeneratedQuestion,
    Mention,
    SeedQuestion,
    FilterDecision,
    PassRate,
    QuestionCheck,
    SolveVerdict,
)


class StoreError(RuntimeError):
    """A store problem the user can act on (bad URI, credentials, missing database)."""


def storage_hint(exc: BaseException) -> str | None:
    """What to do about a failed write (disk full, read-only place), or None if it is neither.
    Works for OSError and for sqlite3 errors, whose messages carry no errno."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text:
        return ("the disk is full: free some space (or write elsewhere) and run the same command "
                "again; finished work is kept")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text or "read-only" in text \
            or "unable to open database" in text:
        return ("cannot write there (read-only file system or no permission): choose a writable "
                "place (-o, --db, --cache, --rejects, --failures) or fix the permissions")
    return None


@dataclass
class GraphStats:
    seeds: int = 0
    extracted_seeds: int = 0
    concepts: dict[str, int] = field(default_factory=dict)  # kind -> count
    edges: dict[str, int] = field(default_factory=dict)  # kind -> count
    generated: int = 0


class GraphStore(ABC):
    """Abstract graph store. Writes are transactional: a crash leaves either the old or the
    new state, never a half-written graph."""

    # --- seeds and extractions ---------------------------------------------------------
    @abstractmethod
    def add_seeds(self, seeds: Iterable[SeedQuestion]) -> int:
        """Insert or update seeds by id; returns how many were written."""

    @abstractmethod
    def seeds(self, ids: Iterable[str] | None = None) -> Iterator[SeedQuestion]:
        """All seeds (or those with the given ids), in a stable order."""

    @abstractmethod
    def add_extractions(self, extractions: Iterable[Extraction]) -> int:
        """Record each seed's concepts (replacing an older extraction of the same seed)."""

    @abstractmethod
    def extracted_seed_ids(self) -> set[str]:
        """Ids of seeds that already have an extraction (resume skips them)."""

    @abstractmethod
    def extractions(self) -> Iterator[Extraction]:
        """Every stored extraction, concept names exactly as extracted (surface forms)."""

    # --- the concept graph -------------------------------------------------------------
    @abstractmethod
    def set_concept_merges(self, merges: Iterable[ConceptMerge]) -> int:
        """Replace the workspace's merge map (alias concept id -> canonical id), atomically.
        `graphgen.graph.rebuild` builds the graph through it."""

    @abstractmethod
    def concept_merges(self) -> list[ConceptMerge]:
        """The stored merge map, ordered by alias id (empty when nothing was merged)."""

    @abstractmethod
    def replace_graph(self, concepts: Sequence[Concept], edges: Sequence[ConceptEdge],
                      mentions: Sequence[Mention]) -> None:
        """Make the stored concept graph exactly these concepts, edges and mentions, in one
        transaction. Write-only: the graph is built upstream (`graphgen.graph.rebuild`); a
        store may diff against what it holds (Neo4j does) but never computes the graph."""

    @abstractmethod
    def concepts(self) -> Iterator[Concept]:
        """All concepts ordered by id (seed_ids filled in)."""

    @abstractmethod
    def edges(self) -> Iterator[ConceptEdge]:
        """All edges ordered by (source, target) (seed_ids may be left empty)."""

    @abstractmethod
    def seed_concepts(self) -> Iterator[tuple[str, list[str]]]:
        """(seed_id, sorted concept ids) for every extracted seed, ordered by seed id."""

    # --- generated questions -----------------------------------------------------------
    @abstractmethod
    def add_generated(self, rows: Iterable[GeneratedQuestion]) -> int:
        """Insert or replace generated rows by id, linked to concepts and seeds."""

    @abstractmethod
    def generated(self) -> Iterator[GeneratedQuestion]:
        """All generated rows ordered by id."""

    # --- solve verdicts -------------------------------------------------------------------
    @abstractmethod
    def add_verdicts(self, verdicts: Iterable[SolveVerdict]) -> int:
        """Insert or replace solve verdicts by question id, linked to the seed or generated row."""

    @abstractmethod
    def verdicts(self) -> Iterator[SolveVerdict]:
        """All solve verdicts ordered by question id."""

    # --- filter decisions (graphgen.status) --------------------------------------------------
    @abstractmethod
    def add_filter_decisions(self, decisions: Iterable[FilterDecision]) -> int:
        """Insert or replace filter's decision per row id (the latest filter run over a row wins)."""

    @abstractmethod
    def filter_decisions(self) -> Iterator[FilterDecision]:
        """All filter decisions ordered by row id."""

    # --- question checks and pass rates (graphgen.status) --------------------------------------
    @abstractmethod
    def add_checks(self, checks: Iterable[QuestionCheck]) -> int:
        """Insert or replace `graphgen check`'s result per row id (the latest check of a row wins)."""

    @abstractmethod
    def checks(self) -> Iterator[QuestionCheck]:
        """All question checks ordered by row id."""

    @abstractmethod
    def add_pass_rates(self, rates: Iterable[PassRate]) -> int:
        """Insert or replace pass rates by (question id, model): another model's never replaces it."""

    @abstractmethod
    def pass_rates(self) -> Iterator[PassRate]:
        """All pass rates ordered by question id, then model."""

    def generated_ids(self) -> set[str]:
        """Ids of the stored rows whose generation succeeded (a resumed generate skips them)."""
        return {row.id for row in self.generated() if row.status == "ok"}

    # --- misc ----------------------------------------------------------------------------
    @abstractmethod
    def stats(self) -> GraphStats: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
