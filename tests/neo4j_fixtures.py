"""Fixtures for tests that need a real Neo4j server.

By default one in-process Neo4j Community 5.26 server (neo4j/, built with Maven on first use
and cached in neo4j/target/) is started per test session on free loopback ports with a temp
data directory, and stopped at the end. A developer with a server of their own sets

    GRAPHGEN_TEST_NEO4J_URI=bolt://localhost:7687 GRAPHGEN_TEST_NEO4J_USER=neo4j \
    GRAPHGEN_TEST_NEO4J_PASSWORD=secret   [GRAPHGEN_TEST_NEO4J_DATABASE=neo4j]

and the tests use it instead (they delete everything in that database between tests!).

When the server cannot be started, every test that needs it fails with the reason: the
Neo4j tests are never skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = REPO / "neo4j" / "server.py"


def load_server_module():
    """neo4j/server.py, loaded by path (the folder is not a package: it would shadow the driver)."""
    name = "graphgen_neo4j_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SERVER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Neo4jConnection:
    uri: str
    user: str
    password: str
    database: str | None = None
    http_uri: str | None = None  # only for the server this suite started
    started_in: float | None = None
    build_seconds: float | None = None

    @property
    def browser_url(self) -> str | None:
        return self.http_uri.rstrip("/") + "/browser/" if self.http_uri else None

    def store(self):
        from graphgen.store.neo4j import Neo4jStore

        return Neo4jStore(self.uri, self.user, self.password, database=self.database)

    def driver(self):
        import neo4j

        return neo4j.GraphDatabase.driver(self.uri, auth=(self.user, self.password))


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory):
    """Connection info of a running Neo4j (started here unless GRAPHGEN_TEST_NEO4J_URI is set)."""
    uri = os.environ.get("GRAPHGEN_TEST_NEO4J_URI")
    if uri:
        yield Neo4jConnection(
            uri=uri,
            user=os.environ.get("GRAPHGEN_TEST_NEO4J_USER", "neo4j"),
            password=os.environ.get("GRAPHGEN_TEST_NEO4J_PASSWORD", ""),
            database=os.environ.get("GRAPHGEN_TEST_NEO4J_DATABASE") or None,
        )
        return
    server_mod = load_server_module()
    problem = None
    try:
        build_seconds = server_mod.build()
        server = server_mod.start(tmp_path_factory.mktemp("neo4j-data"))
    except (server_mod.ServerError, OSError) as exc:
        problem = str(exc)
    if problem is not None:  # fail (never skip), outside the except: one clear message
        pytest.fail(f"the Neo4j test server could not be started: {problem}", pytrace=False)
    try:
        yield Neo4jConnection(uri=server.bolt_uri, user=server.user, password=server.password,
                              http_uri=server.http_uri, started_in=server.started_in,
                              build_seconds=build_seconds)
    finally:
        server.stop()


def clear_database(conn: Neo4jConnection) -> None:
    """Delete every node and relationship (Community has one user database: tests share it)."""
    with conn.driver() as driver:
        with driver.session(database=conn.database) as session:
            session.run("MATCH (n) DETACH DELETE n").consume()


@pytest.fixture
def neo4j_clean(neo4j_server):
    """The server, with an empty database."""
    clear_database(neo4j_server)
    return neo4j_server


@pytest.fixture
def neo4j_store(neo4j_clean):
    """A Neo4jStore on an empty database."""
    store = neo4j_clean.store()
    try:
        yield store
    finally:
        store.close()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    return predicate()


# --- small test data ----------------------------------------------------------------------

#: Names that break string-built Cypher: quotes, backticks, braces, backslashes, Unicode,
#: keywords, parameter and comment syntax.
NASTY = [
    "O'Brien's \"theorem\"",
    "`backtick` label",
    "{map: 1} and $param",
    "back\\slash \\n not a newline",
    "MATCH (n) DETACH DELETE n",
    "'; MATCH (n) DETACH DELETE n //",
    "Thales' theorem — Θεώρημα 日本語 ∑ 🙂",
    "RETURN null AS x } CALL { CREATE (:Pwned)",
]


def small_workspace():
    """(seeds, extractions, generated) of a tiny but complete workspace, nasty names included."""
    from graphgen.records import Extraction, GeneratedQuestion, LLMUsage, SeedQuestion

    seeds = [
        SeedQuestion(id="gsm-1", question="Tom has 3 apples and buys 2 more. How many?", solution="3+2=5",
                     answer="5", source="gsm8k"),
        SeedQuestion(id="gsm-2", question="A train goes 60 km/h for 2 h. Distance?", answer="120", source="gsm8k"),
        SeedQuestion(id="math-1", question="Solve $x^2-5x+6=0$. {braces} `ticks` \\frac{1}{2}",
                     solution="(x-2)(x-3)=0", answer="2, 3", source="math"),
        SeedQuestion(id="math-2", question=NASTY[5], solution=NASTY[3], answer=NASTY[1], source="math"),
        SeedQuestion(id="math-3", question="Find the area of a circle of radius 2.", answer="4\\pi", source="math"),
    ]
    extractions = [
        Extraction(seed_id="gsm-1", topics=["Arithmetic"], knowledge_points=["Addition", "Word problems"],
                   model="fake-model", prompt_version="extract_v1",
                   usage=LLMUsage(model="fake-model", prompt_tokens=120, completion_tokens=30, cost_usd=0.0001)),
        Extraction(seed_id="gsm-2", topics=["Arithmetic", "Rates"],
                   knowledge_points=["Multiplication", "Distance = speed x time", "Word Problems"],
                   model="fake-model", prompt_version="extract_v1"),
        Extraction(seed_id="math-1", topics=["Algebra", "Quadratic equations"],
                   knowledge_points=["Factoring quadratics", "Zero product property", NASTY[0]]),
        Extraction(seed_id="math-2", topics=[NASTY[4], "Algebra"],
                   knowledge_points=[NASTY[1], NASTY[2], NASTY[3], NASTY[6], NASTY[7]]),
        Extraction(seed_id="math-3", topics=["Geometry"], knowledge_points=["Area of a circle", "Multiplication"]),
    ]
    generated = [
        GeneratedQuestion(id="gen-concepts-1", kind="concepts", question="New Q about apples",
                          solution="step 1", answer="7", sample_id="s-1",
                          concept_ids=["topic:arithmetic", "kp:addition", "kp:multiplication"],
                          exemplar_seed_ids=["gsm-1", "gsm-2"], model="fake-model", prompt_version="gen_v1",
                          usage=LLMUsage(model="fake-model", prompt_tokens=500, completion_tokens=200)),
        GeneratedQuestion(id="gen-fusion-1", kind="fusion", question=NASTY[6], solution=NASTY[2],
                          answer="42", seed_ids=["gsm-1", "math-1"], similarity=0.8125,
                          strategy="sequential", model="fake-model", prompt_version="fuse_v1"),
        GeneratedQuestion(id="gen-failed-1", kind="concepts", status="failed", error="no valid JSON",
                          raw="```json {broken", concept_ids=["topic:geometry"]),
    ]
    return seeds, extractions, generated
