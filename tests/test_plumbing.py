"""Shared plumbing: JSONL files, SQLite files and migrations, one-line errors, normalisation,
package resources, and the one rule that picks the store."""

import sqlite3

import pytest
from pydantic import BaseModel

from graphgen.config import load_settings
from graphgen.errors import one_line
from graphgen.jsonl import atomic_path, chunked, cut_torn_tail, open_for_append, read_jsonl, write_jsonl, write_lines
from graphgen.normalize import normalize_question
from graphgen.resources import read_resource, resource_path
from graphgen.sqlitedb import applied_migrations, connect, migrate, transaction


class Row(BaseModel):
    id: str
    n: int = 0


def test_jsonl_round_trip_and_torn_tail(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert write_jsonl((Row(id=str(i), n=i) for i in range(5)), path) == 5
    assert [r.n for r in read_jsonl(path, Row)] == [0, 1, 2, 3, 4]
    with path.open("a") as fh:
        fh.write('{"id": "5", "n"')  # killed mid-line
    assert len(list(read_jsonl(path, Row, own_output=True))) == 5  # graphgen's own file: torn by a kill
    with pytest.raises(ValueError, match=r"rows.jsonl:6: not a Row record"):
        list(read_jsonl(path, Row))  # an input file: a bad last line is an error like any other
    with open_for_append(path) as fh:
        fh.write(Row(id="5", n=5).model_dump_json() + "\n")
    assert [r.n for r in read_jsonl(path, Row)] == [0, 1, 2, 3, 4, 5]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # a whole last line without its newline: a record
    assert [r.n for r in read_jsonl(path, Row)] == [0, 1, 2, 3, 4, 5]
    with open_for_append(path) as fh:  # and appending keeps it
        fh.write(Row(id="6", n=6).model_dump_json() + "\n")
    assert [r.n for r in read_jsonl(path, Row)] == [0, 1, 2, 3, 4, 5, 6]


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a"}\n{"n": 3}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a Row record \(1 validation error"):
        list(read_jsonl(path, Row))


def test_cut_torn_tail_only_cuts_the_last_partial_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"a\n" * 40000 + b"partial")  # the newline lies beyond the first 64 KiB looked at
    cut_torn_tail(path)
    assert path.read_bytes() == b"a\n" * 40000
    cut_torn_tail(path)  # intact: untouched
    assert path.read_bytes() == b"a\n" * 40000
    path.write_bytes(b"only a torn line")
    cut_torn_tail(path)
    assert path.read_bytes() == b""


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out" / "f.jsonl"
    assert write_lines(["old\n"], path) == 1

    def lines():
        yield "new\n"
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_lines(lines(), path)
    assert path.read_text() == "old\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.jsonl"]  # no temp file left behind
    with atomic_path(tmp_path / "dir") as tmp:  # directories too (saved datasets)
        tmp.mkdir()
        (tmp / "part").write_text("x")
    assert (tmp_path / "dir" / "part").read_text() == "x"


def test_chunked_streams_lists():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []


MIGRATIONS = [("0001_a", "CREATE TABLE a (x INTEGER); CREATE INDEX a_x ON a (x)"),
              ("0002_b", "CREATE TABLE b (y TEXT)")]


def test_migrations_run_once_in_order_and_are_recorded(tmp_path):
    db = connect(tmp_path / "w.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(db, MIGRATIONS[:1]) == ["0001_a"]
    assert migrate(db, MIGRATIONS) == ["0002_b"]  # an old file upgrades in place
    assert migrate(db, MIGRATIONS) == []
    assert applied_migrations(db) == ["0001_a", "0002_b"]
    db.close()


def test_a_failing_migration_leaves_nothing_half_done(tmp_path):
    db = connect(tmp_path / "w.db")
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, [("0001_bad", "CREATE TABLE ok (x); CREATE TABLE broken (")])
    assert applied_migrations(db) == []
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'ok'").fetchone()
    migrate(db, MIGRATIONS)
    with pytest.raises(KeyboardInterrupt), transaction(db):
        db.execute("INSERT INTO a VALUES (1)")
        raise KeyboardInterrupt
    assert db.execute("SELECT count(*) FROM a").fetchone()[0] == 0


def test_caches_written_before_migrations_upgrade_in_place(tmp_path):
    from graphgen.embed import EmbeddingCache
    from graphgen.llm.cache import ResponseCache

    old = sqlite3.connect(tmp_path / "emb.db")  # the table as files before this change held it
    old.execute("CREATE TABLE embeddings (model TEXT NOT NULL, text_sha256 BLOB NOT NULL, dim INTEGER NOT NULL,"
                " vector BLOB NOT NULL, PRIMARY KEY (model, text_sha256)) WITHOUT ROWID")
    old.execute("INSERT INTO embeddings VALUES ('m', x'00', 1, x'0000803f')")
    old.commit()
    old.close()
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        assert cache.count("m") == 1
    cache = ResponseCache(tmp_path / "llm.db")
    assert len(cache) == 0 and applied_migrations(cache._conn) == ["0001_responses"]
    cache.close()


def test_one_line():
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(ValueError("  \n")) == "ValueError"
    assert one_line(RuntimeError("a\n  b\tc"), whole=True) == "a b c"
    assert one_line("text\nmore") == "text"


def test_normalize_question_keeps_case_and_collapses_space():
    assert normalize_question(" Solve  $X$\tfor\u00a0x ") == "Solve $X$ for x"
    assert normalize_question("Ｘ") == "X"  # NFKC


def test_package_resources_found_one_way():
    assert "## user" in read_resource("prompts", "generate_v1.txt")
    assert resource_path("schema", "generated_qa.json").is_file()
    assert read_resource("cypher", "concepts_read.cypher").strip()
    with pytest.raises(FileNotFoundError, match="no cypher file 'nope.cypher'"):
        read_resource("cypher", "nope.cypher")


@pytest.mark.parametrize("layer", ["file", "env", "flags"])
def test_a_neo4j_uri_selects_neo4j_in_any_layer_unless_the_kind_is_given(tmp_path, layer):
    cfg = tmp_path / "graphgen.toml"
    cfg.write_text('[store]\nneo4j_uri = "bolt://h:7687"\n' if layer == "file" else "")
    env = {"NEO4J_URI": "bolt://h:7687"} if layer == "env" else {}
    flags = {"store": {"neo4j_uri": "bolt://h:7687", "kind": None}} if layer == "flags" else None
    assert load_settings(cfg, env=env, overrides=flags).store.kind == "neo4j"
    # a kind given in a later layer wins over the URI's choice
    later = {"store": {"kind": "sqlite"}}
    if layer != "flags":
        assert load_settings(cfg, env=env, overrides=later).store.kind == "sqlite"
