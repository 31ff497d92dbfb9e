"""The Neo4j graph store: the concept graph where users explore it (Neo4j Browser) and share it.

Graph model (the README section "Neo4j" has the picture):

    (:Seed {id, question, solution, answer, source, extracted, extracted_topics,
            extracted_knowledge_points, extracted_model, extracted_prompt_version, extracted_usage})
    (:Concept:Topic | :Concept:KnowledgePoint {id, kind, name, display_name, frequency})
    (:Seed)-[:MENTIONS {surface}]->(:Concept)
    (:Concept)-[:CO_OCCURS {kind, count, weight}]->(:Concept)
    (:Generated {...})-[:BUILT_FROM]->(:Concept), -[:USED_EXEMPLAR]->(:Seed), -[:FUSED_FROM]->(:Seed)

Every statement is a named file in `cypher/` (installed as graphgen.cypher); only parameters
carry data. Writes are batched (`UNWIND $rows ... MERGE`) in managed write transactions
(`execute_write`), which the driver retries on transient errors. The store only stores:
graphgen.graph.rebuild(store) computes concepts, MENTIONS and CO_OCCURS (the same code for
both stores) and hands them to `replace_graph`, which writes only the difference from what
Neo4j holds, in one transaction. It also holds solve's verdicts (:Verdict) and filter's
decisions (:FilterDecision), check's results (:QuestionCheck) and each model's pass rates
(:PassRate) beside the rows they judge.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from graphgen.errors import one_line
from graphgen.jsonl import chunked
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
    FilterDecision,
    FilterReason,
    JudgeVerdict,
    PassRate,
    QuestionCheck,
    SeedQuestion,
    SolveVerdict,
    VariantLineage,
)
from graphgen.resources import read_resource
from graphgen.store.base import GraphStats, GraphStore, StoreError

BATCH = 5_000
_SCHEMES = {"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"}
SCHEMA = (
    "schema_seed_id",
    "schema_concept_id",
    "schema_generated_id",
    "schema_verdict_question_id",
    "schema_filter_decision_row_id",
    "schema_question_check_row_id",
    "schema_pass_rate_id",
    "schema_concept_name",
    "schema_concept_display_name",
    "schema_concept_merge_alias",
)
T = TypeVar("T")


@functools.cache
def cypher(name: str) -> str:
    """The statement in cypher/<name>.cypher."""
    try:
        return read_resource("cypher", f"{name}.cypher")
    except FileNotFoundError as exc:
        raise KeyError(f"no Cypher statement named {name!r} ({exc})") from None


class Neo4jStore(GraphStore):
    """GraphStore on a Neo4j 5 server (Community, Enterprise or Aura).

    >>> store = Neo4jStore("bolt://localhost:7687", "neo4j", "secret")  # doctest: +SKIP
    """

    def __init__(self, uri: str, user: str = "neo4j", password: str = "", database: str | None = None,
                 *, batch_size: int = BATCH, connection_timeout: float = 10.0):
        import neo4j  # the driver: a dependency of graphgen, imported only when Neo4j is used

        self._neo4j = neo4j
        self.uri, self.user, self.database = uri, user, database or None
        self.batch_size = batch_size
        where = f"{uri}" + (f" (database {database!r})" if database else "")
        self._where = where
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in _SCHEMES:
            raise StoreError(
                f"invalid Neo4j URI {uri!r}: use neo4j://host:7687, bolt://host:7687 "
                "or neo4j+s://<id>.databases.neo4j.io (set NEO4J_URI)"
            )
        try:
            options = dict(auth=(user, password), connection_timeout=connection_timeout,
                           max_transaction_retry_time=30.0)
            try:  # the server need not send notifications (e.g. "label does not exist yet")
                self.driver = neo4j.GraphDatabase.driver(uri, notifications_min_severity="OFF", **options)
            except TypeError:  # drivers before 5.7
                self.driver = neo4j.GraphDatabase.driver(uri, **options)
        except Exception as exc:  # bad scheme, malformed URI
            raise StoreError(
                f"invalid Neo4j URI {uri!r} ({one_line(exc, whole=True)}): use neo4j://host:7687, bolt://host:7687 "
                "or neo4j+s://<id>.databases.neo4j.io (set NEO4J_URI)"
            ) from None
        try:
            with self._errors():
                self.driver.verify_connectivity()
                with self._session(read=True) as session:
                    session.run(cypher("ping")).consume()
                self._ensure_schema()
        except BaseException:
            self.driver.close()
            raise

    # --- plumbing ---------------------------------------------------------------------
    def _session(self, read: bool = False):
        mode = self._neo4j.READ_ACCESS if read else self._neo4j.WRITE_ACCESS
        return self.driver.session(database=self.database, default_access_mode=mode)

    @contextmanager
    def _errors(self):
        """Translate the driver's connection, auth and database errors into one clear line."""
        exc_mod = self._neo4j.exceptions
        try:
            yield
        except exc_mod.AuthError:
            raise StoreError(
                f"Neo4j at {self.uri} rejected user {self.user!r}: wrong username or password "
                "(set NEO4J_USERNAME and NEO4J_PASSWORD)"
            ) from None
        except (exc_mod.ServiceUnavailable, exc_mod.SessionExpired) as exc:
            raise StoreError(
                f"cannot reach Neo4j at {self.uri}: {one_line(exc, whole=True)} (is the server running? "
                "start it with `docker compose up -d neo4j`, or set NEO4J_URI)"
            ) from None
        except exc_mod.ClientError as exc:
            code = getattr(exc, "code", "") or ""
            if code.endswith("DatabaseNotFound"):
                raise StoreError(
                    f"Neo4j at {self.uri} has no database {self.database!r}: create it "
                    f"(CREATE DATABASE `{self.database}` on Enterprise/Aura) or unset NEO4J_DATABASE "
                    "to use the default database"
                ) from None
            if "Security" in code:
                raise StoreError(f"Neo4j at {self.uri} refused access: {one_line(exc, whole=True)}") from None
            raise
        except exc_mod.ConfigurationError as exc:
            raise StoreError(f"Neo4j at {self.uri}: {one_line(exc, whole=True)}") from None

    def _write(self, work: Callable[[Any], T]) -> T:
        """Run `work(tx)` in one managed write transaction (retried on transient errors)."""
        with self._errors(), self._session() as session:
            return session.execute_write(work)

    def _stream(self, name: str, **params: Any) -> Iterator[Any]:
        """Stream the records of one read statement (auto-commit, fetched in chunks)."""
        with self._errors(), self._session(read=True) as session:
            result = session.run(cypher(name), params)
            yield from result

    def _ensure_schema(self) -> None:
        # Schema statements cannot share a transaction with writes; IF NOT EXISTS makes
        # them idempotent. They run before any MERGE this store issues.
        with self._session() as session:
            for name in SCHEMA:
                session.run(cypher(name)).consume()

    def close(self) -> None:
        self.driver.close()

    # --- seeds and extractions ---------------------------------------------------------
    def add_seeds(self, seeds: Iterable[SeedQuestion]) -> int:
        n = 0
        for chunk in chunked(seeds, self.batch_size):
            rows = [{**s.model_dump(include={"id", "question", "solution", "answer", "source"}),
                     "metadata": json.dumps(s.metadata, ensure_ascii=False) if s.metadata else None} for s in chunk]
            self._write(lambda tx, rows=rows: tx.run(cypher("seeds_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def seeds(self, ids: Iterable[str] | None = None) -> Iterator[SeedQuestion]:
        records = (self._stream("seeds_read") if ids is None
                   else self._stream("seeds_read_ids", ids=sorted(set(ids))))
        for r in records:
            yield SeedQuestion(id=r["id"], question=r["question"], solution=r["solution"],
                               answer=r["answer"], source=r["source"] or "",
                               metadata=json.loads(r["metadata"]) if r["metadata"] else {})

    def add_extractions(self, extractions: Iterable[Extraction]) -> int:
        n = 0
        for chunk in chunked(extractions, self.batch_size):
            rows = [
                {
                    "seed_id": e.seed_id,
                    "topics": list(e.topics),
                    "knowledge_points": list(e.knowledge_points),
                    "model": e.model,
                    "prompt_version": e.prompt_version,
                    "usage": e.usage.model_dump_json() if e.usage else None,
                }
                for e in chunk
            ]
            self._write(lambda tx, rows=rows: tx.run(cypher("extractions_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def extracted_seed_ids(self) -> set[str]:
        return {r["id"] for r in self._stream("extracted_seed_ids")}

    def extractions(self) -> Iterator[Extraction]:
        for r in self._stream("extractions_read"):
            yield _extraction(r)

    # --- the concept graph -------------------------------------------------------------
    def set_concept_merges(self, merges: Iterable[ConceptMerge]) -> int:
        rows = [m.model_dump() for m in merges]

        def work(tx) -> None:
            tx.run(cypher("concept_merges_delete")).consume()
            for chunk in chunked(rows, self.batch_size):
                tx.run(cypher("concept_merges_create"), rows=chunk).consume()

        self._write(work)
        return len(rows)

    def concept_merges(self) -> list[ConceptMerge]:
        return [ConceptMerge(alias_id=r["alias_id"], canonical_id=r["canonical_id"], similarity=r["similarity"])
                for r in self._stream("concept_merges_read")]

    def replace_graph(self, concepts: Sequence[Concept], edges: Sequence[ConceptEdge],
                      mentions: Sequence[Mention]) -> None:
        """Writes only what differs from the stored graph (diffing keeps a rebuild of a large,
        mostly unchanged graph cheap), in one transaction."""
        batch = self.batch_size

        def work(tx) -> None:
            # surface form per (seed, concept): the first one the extraction used
            want_mentions = {(m.seed_id, m.concept_id): m.surface for m in mentions}
            have_mentions = {(r["seed_id"], r["concept_id"]) for r in tx.run(cypher("graph_mentions_read"))}
            want_edges = {(e.source, e.target): (e.kind.value, e.count, e.weight) for e in edges}
            have_edges = {
                (r["source"], r["target"]): (r["kind"], r["count"], r["weight"])
                for r in tx.run(cypher("graph_edges_read_full"))
            }

            # nodes first, then relationships
            rows = [c.model_dump(mode="json", exclude={"seed_ids"}) for c in concepts]
            for chunk in chunked(rows, batch):
                tx.run(cypher("graph_concepts_merge"), rows=chunk).consume()
            tx.run(cypher("graph_concepts_prune"), keep=[c.id for c in concepts]).consume()

            stale = [{"seed_id": s, "concept_id": c} for s, c in have_mentions - want_mentions.keys()]
            for chunk in chunked(stale, batch):
                tx.run(cypher("graph_mentions_delete"), rows=chunk).consume()
            new: dict[str, list[dict]] = {}
            for (s, c), surface in want_mentions.items():
                if (s, c) not in have_mentions:
                    new.setdefault(s, []).append({"concept_id": c, "surface": surface})
            rows = [{"seed_id": s, "mentions": m} for s, m in new.items()]
            for chunk in chunked(rows, max(1, batch // 4)):  # ~4 mentions per seed
                tx.run(cypher("graph_mentions_create"), rows=chunk).consume()

            changed = [k for k, v in have_edges.items() if want_edges.get(k) != v]
            for chunk in chunked([{"source": s, "target": t} for s, t in changed], batch):
                tx.run(cypher("graph_edges_delete"), rows=chunk).consume()
            create: dict[str, list[dict]] = {}
            for (s, t), (kind, count, weight) in want_edges.items():
                if have_edges.get((s, t)) != (kind, count, weight):
                    create.setdefault(s, []).append({"target": t, "kind": kind, "count": count, "weight": weight})
            # one row per source concept, split so no row carries more than `batch` edges
            rows = [{"source": s, "edges": edges[i : i + batch]}
                    for s, edges in create.items() for i in range(0, len(edges), batch)]
            for chunk in chunked(rows, max(1, batch // 50)):
                tx.run(cypher("graph_edges_create"), rows=chunk).consume()
            tx.run(cypher("graph_generated_relink")).consume()

        self._write(work)

    def concepts(self) -> Iterator[Concept]:
        for r in self._stream("concepts_read"):
            yield Concept(id=r["id"], kind=ConceptKind(r["kind"]), name=r["name"],
                          display_name=r["display_name"], frequency=r["frequency"],
                          seed_ids=list(r["seed_ids"]), aliases=list(r["aliases"]))

    def edges(self) -> Iterator[ConceptEdge]:
        for r in self._stream("edges_read"):
            yield ConceptEdge.model_construct(
                source=r["source"], target=r["target"], kind=EdgeKind(r["kind"]),
                count=r["count"], weight=r["weight"], seed_ids=[],
            )

    def seed_concepts(self) -> Iterator[tuple[str, list[str]]]:
        for r in self._stream("seed_concepts_read"):
            yield r["seed_id"], list(r["concept_ids"])

    # --- generated questions -----------------------------------------------------------
    def add_generated(self, rows: Iterable[GeneratedQuestion]) -> int:
        n = 0
        for chunk in chunked(rows, self.batch_size):
            nodes = [{"id": g.id, "props": _generated_props(g)} for g in chunk]
            links = {
                "generated_link_concepts": [{"id": g.id, "target": t} for g in chunk for t in g.concept_ids],
                "generated_link_exemplars": [{"id": g.id, "target": t} for g in chunk for t in g.exemplar_seed_ids],
                "generated_link_fused": [{"id": g.id, "target": t} for g in chunk for t in g.seed_ids],
            }

            def work(tx, nodes=nodes, links=links) -> None:
                tx.run(cypher("generated_merge"), rows=nodes).consume()
                tx.run(cypher("generated_unlink"), ids=[r["id"] for r in nodes]).consume()
                for name, link_rows in links.items():
                    if link_rows:
                        tx.run(cypher(name), rows=link_rows).consume()

            self._write(work)
            n += len(nodes)
        return n

    def generated(self) -> Iterator[GeneratedQuestion]:
        for r in self._stream("generated_read"):
            yield _generated_record(dict(r["props"]))

    # --- solve verdicts ---------------------------------------------------------------------
    def add_verdicts(self, verdicts: Iterable[SolveVerdict]) -> int:
        n = 0
        for chunk in chunked(verdicts, self.batch_size):
            rows = [{"question_id": v.question_id, "props": _verdict_props(v)} for v in chunk]
            self._write(lambda tx, rows=rows: tx.run(cypher("verdicts_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def verdicts(self) -> Iterator[SolveVerdict]:
        for r in self._stream("verdicts_read"):
            props = dict(r["props"])
            props["votes"] = json.loads(props.get("votes") or "{}")
            props["kept"] = list(props.get("kept") or [])
            judge = props.pop("judge", None)
            yield SolveVerdict.model_validate({**props, "judge": JudgeVerdict.model_validate_json(judge) if judge else None})

    # --- filter decisions ---------------------------------------------------------------------
    def add_filter_decisions(self, decisions: Iterable[FilterDecision]) -> int:
        n = 0
        for chunk in chunked(decisions, self.batch_size):
            rows = [{"row_id": d.row_id, "props": {"row_id": d.row_id, "row_kind": d.row_kind, "decision": d.decision,
                                                    "reason": d.reason.model_dump_json(exclude_none=True) if d.reason else None}}
                    for d in chunk]
            self._write(lambda tx, rows=rows: tx.run(cypher("filter_decisions_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def filter_decisions(self) -> Iterator[FilterDecision]:
        for r in self._stream("filter_decisions_read"):
            props = dict(r["props"])
            reason = props.pop("reason", None)
            yield FilterDecision(**props, reason=FilterReason.model_validate_json(reason) if reason else None)

    # --- question checks and pass rates ---------------------------------------------------------
    def add_checks(self, checks: Iterable[QuestionCheck]) -> int:
        n = 0
        for chunk in chunked(checks, self.batch_size):
            # the record whole as JSON text (Neo4j properties are flat), plus what Browser users filter on
            rows = [{"row_id": c.row_id, "props": {
                "row_id": c.row_id, "row_kind": c.row_kind, "status": c.status, "answer_type": c.answer_type,
                "problem_type": c.problem_type, "record": c.model_dump_json(exclude_none=True)}} for c in chunk]
            self._write(lambda tx, rows=rows: tx.run(cypher("question_checks_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def checks(self) -> Iterator[QuestionCheck]:
        for r in self._stream("question_checks_read"):
            yield QuestionCheck.model_validate_json(r["record"])

    def add_pass_rates(self, rates: Iterable[PassRate]) -> int:
        n = 0
        for chunk in chunked(rates, self.batch_size):
            rows = [{"id": f"{r.question_id}|{r.model}", "question_id": r.question_id,
                     "props": {"id": f"{r.question_id}|{r.model}", **r.model_dump()}} for r in chunk]
            self._write(lambda tx, rows=rows: tx.run(cypher("pass_rates_merge"), rows=rows).consume())
            n += len(rows)
        return n

    def pass_rates(self) -> Iterator[PassRate]:
        for r in self._stream("pass_rates_read"):
            props = dict(r["props"])
            props.pop("id", None)
            yield PassRate.model_validate(props)

    # --- misc ----------------------------------------------------------------------------
    def stats(self) -> GraphStats:
        with self._errors(), self._session(read=True) as session:
            r = session.run(cypher("stats")).single()
        return GraphStats(
            seeds=r["seeds"],
            extracted_seeds=r["extracted_seeds"],
            concepts=dict(sorted((k, n) for k, n in r["concepts"])),
            edges=dict(sorted((k, n) for k, n in r["edges"])),
            generated=r["generated"],
        )


# --- record <-> property conversion -------------------------------------------------------

_LIST_FIELDS = ("concept_ids", "exemplar_seed_ids", "seed_ids")


def _extraction(r: Any) -> Extraction:
    usage = r["usage"]
    return Extraction(
        seed_id=r["seed_id"],
        topics=list(r["topics"] or []),
        knowledge_points=list(r["knowledge_points"] or []),
        model=r["model"] or "",
        prompt_version=r["prompt_version"] or "",
        usage=LLMUsage.model_validate_json(usage) if usage else None,
    )


def _verdict_props(v: SolveVerdict) -> dict[str, Any]:
    """Neo4j properties are flat: the vote map is kept as JSON text, nulls dropped."""
    props = v.model_dump(exclude_none=True, exclude={"judge"})
    props["votes"] = json.dumps(v.votes, ensure_ascii=False)
    if v.judge is not None:
        props["judge"] = v.judge.model_dump_json()
    return props


def _generated_props(g: GeneratedQuestion) -> dict[str, Any]:
    """Node properties: scalars as they are, lists as string lists, usage and a variant's
    lineage as JSON text (Neo4j properties cannot be maps)."""
    props = g.model_dump(exclude={"usage", "variant"})
    props["usage"] = g.usage.model_dump_json() if g.usage else None
    props["variant"] = g.variant.model_dump_json() if g.variant else None
    return props


def _generated_record(props: dict[str, Any]) -> GeneratedQuestion:
    usage = props.pop("usage", None)
    variant = props.pop("variant", None)
    for name in _LIST_FIELDS:
        props[name] = list(props.get(name) or [])
    return GeneratedQuestion(**props, usage=LLMUsage.model_validate_json(usage) if usage else None,
                             variant=VariantLineage.model_validate_json(variant) if variant else None)
