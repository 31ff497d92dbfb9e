"""Connection failures, wrong credentials and a missing database give one clear StoreError."""

from __future__ import annotations

import socket

import pytest

from graphgen.store.base import StoreError
from graphgen.store.neo4j import Neo4jStore

pytestmark = pytest.mark.neo4j


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    assert exc.value.__cause__ is None and (exc.value.__context__ is None or exc.value.__suppress_context__)
    return text


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening():
    with pytest.raises(StoreError) as exc:
        Neo4jStore(f"bolt://127.0.0.1:{closed_port()}", "neo4j", "x", connection_timeout=3)
    text = one_line(exc)
    assert "cannot reach Neo4j" in text and "NEO4J_URI" in text


def test_bad_uri():
    with pytest.raises(StoreError) as exc:
        Neo4jStore("http://127.0.0.1:7474", "neo4j", "x")
    assert "NEO4J_URI" in one_line(exc)


def test_wrong_password(neo4j_server):
    if not neo4j_server.password:
        pytest.fail("this test needs a server with authentication (the suite's own server has it)")
    with pytest.raises(StoreError) as exc:
        Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password + "-wrong")
    text = one_line(exc)
    assert "wrong username or password" in text and "NEO4J_PASSWORD" in text


def test_missing_database(neo4j_server):
    with pytest.raises(StoreError) as exc:
        Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password, database="nosuchdb")
    text = one_line(exc)
    assert "no database 'nosuchdb'" in text and "NEO4J_DATABASE" in text


def test_factory_selects_neo4j(neo4j_server):
    from graphgen.config import StoreSettings
    from graphgen.store import open_store

    settings = StoreSettings(kind="neo4j", neo4j_uri=neo4j_server.uri, neo4j_username=neo4j_server.user,
                             neo4j_password=neo4j_server.password, neo4j_database=neo4j_server.database)
    with open_store(settings) as store:
        assert type(store).__name__ == "Neo4jStore"
        store.stats()
