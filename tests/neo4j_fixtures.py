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
    try:
        build_seconds = server_mod.build()
        server = server_mod.start(tmp_path_factory.mktemp("neo4j-data"))
    except server_mod.ServerError as exc:
        pytest.fail(f"the Neo4j test server could not be started: {exc}", pytrace=False)
    except OSError as exc:
        pytest.fail(f"the Neo4j test server could not be started: {exc}", pytrace=False)
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
