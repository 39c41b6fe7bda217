"""The DuckDB store's staging table: parts of a large file are committed where no query sees
them, and join ``flow_facts`` only with the file's record (or are dropped)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb

from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from tests.unit.sinks.test_duckdb import rec, rows


def facts(db: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT i.hash, sum(f.bytes)::BIGINT, count(*) FROM flow_facts f "
                           "JOIN file_ids i ON i.id = f.file_id GROUP BY ALL ORDER BY ALL").fetchall()


def tables(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_parts_are_invisible_until_the_file_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        sink.store_part(rows([("api", "db")], [10]), 7)
        sink.store_part(rows([("api", "db"), ("web", None)], [1, 2]), 7)
        # committed, but nobody querying the store sees them
        assert sink.query("SELECT count(*) AS n FROM flows").column("n").to_pylist() == [0]
        assert sink.store_files([(rows([("api", "db")], [100]), rec("a", 4))], [7]) == [True]
        got = sink.query("SELECT src_app, sum(bytes)::BIGINT AS b FROM flows GROUP BY ALL ORDER BY ALL")
        assert got.to_pylist() == [{"src_app": "api", "b": 111}, {"src_app": "web", "b": 2}]
    assert facts(db) == [("a", 113, 4)]
    assert "flow_facts_staging" not in tables(db)  # emptied, then dropped at close


def test_a_stage_of_a_file_not_stored_is_dropped(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        assert sink.store_files([(rows([("x", "y")], [1]), rec("a", 1))]) == [True]
        sink.store_part(rows([("api", "db")], [10]), 1)  # the same file again: not stored
        sink.store_part(rows([("api", "db")], [20]), 2)  # a file that fails later
        assert sink.store_files([(rows([("x", "y")], [5]), rec("a", 2))], [1]) == [False]
        sink.drop_part(2)
        assert sink.query("SELECT count(*) AS n FROM flow_facts_staging").column("n").to_pylist() == [0]
    assert facts(db) == [("a", 1, 1)]


def test_force_replaces_a_staged_file_in_one_commit(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        sink.store_part(rows([("api", "db")], [10]), 1)
        assert sink.store_files([(rows([("api", "db")], [1]), rec("a", 2))], [1]) == [True]
        sink.store_part(rows([("api", "db")], [30]), 2)
        again = dataclasses.replace(rec("a", 2), replace=True)
        assert sink.store_files([(rows([("api", "db")], [3]), again)], [2]) == [True]
    assert facts(db) == [("a", 33, 2)]


def test_leftovers_of_a_killed_run_are_never_seen_and_go_with_the_next(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    sink = DuckDBSink(DuckDBConfig(path=str(db)))
    sink.open()
    sink.store_part(rows([("api", "db")], [10]), 1)
    sink.con.close()  # killed: neither the file's record nor the close's clean-up
    assert "flow_facts_staging" in tables(db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flows").fetchall() == [(0,)]
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        sink.store_part(rows([("web", None)], [5]), 1)
        assert sink.store_files([(rows([], []), rec("b", 1))], [1]) == [True]
    assert facts(db) == [("b", 5, 1)]
