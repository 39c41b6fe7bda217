"""A large file's parts: committed into ``flow_facts`` one by one (bounded transactions), but
``flows`` shows none of them until the file's record is committed; a file not stored has its
parts deleted, and a killed replay's are hidden from readers and deleted by the next writer."""

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


def count(sink: DuckDBSink, table: str = "flows") -> int:
    return int(sink.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py())


def test_parts_are_invisible_until_the_file_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        assert sink.store_files([(rows([("x", "y")], [5]), rec("b", 1))]) == [True]
        sink.store_part(rows([("api", "db")], [10]), 7)
        sink.store_part(rows([("api", "db"), ("web", None)], [1, 2]), 7)
        # committed (each part its own transaction), but no query of flows sees them
        assert count(sink, "flow_facts") == 4 and count(sink) == 1
        # another file commits meanwhile: it shows once the file opened before it is whole
        assert sink.store_files([(rows([("x", "y")], [6]), rec("c", 1))]) == [True]
        assert count(sink) == 1
        assert sink.store_files([(rows([("api", "db")], [100]), rec("a", 4))], [7]) == [True]
        got = sink.query("SELECT src_app, sum(bytes)::BIGINT AS b FROM flows GROUP BY ALL ORDER BY ALL")
        assert got.to_pylist() == [{"src_app": "api", "b": 111}, {"src_app": "web", "b": 2},
                                   {"src_app": "x", "b": 11}]
        assert count(sink, "open_files") == 0
    assert facts(db) == [("a", 113, 4), ("b", 5, 1), ("c", 6, 1)]


def test_the_parts_of_a_file_not_stored_are_deleted(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        assert sink.store_files([(rows([("x", "y")], [1]), rec("a", 1))]) == [True]
        sink.store_part(rows([("api", "db")], [10]), 1)  # the same file again: not stored
        sink.store_part(rows([("api", "db")], [20]), 2)  # a file that fails later
        assert sink.store_files([(rows([("x", "y")], [5]), rec("a", 2))], [1]) == [False]
        sink.drop_part(2)
        sink.store_part(rows([("api", "db")], [40]), 3)  # the replay fails: closed with it open
    assert facts(db) == [("a", 1, 1)]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flow_facts").fetchall() == [(1,)]


def test_force_replaces_a_staged_file_in_one_commit(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        sink.store_part(rows([("api", "db")], [10]), 1)
        assert sink.store_files([(rows([("api", "db")], [1]), rec("a", 2))], [1]) == [True]
        sink.store_part(rows([("api", "db")], [30]), 2)
        again = dataclasses.replace(rec("a", 2), replace=True)
        assert sink.store_files([(rows([("api", "db")], [3]), again)], [2]) == [True]
        # and a file stored whole is replaced by one stored in parts, and back
        assert sink.store_files([(rows([("w", "z")], [7]), rec("c", 1))]) == [True]
        sink.store_part(rows([("w", "z")], [70]), 3)
        assert sink.store_files([(rows([], []), dataclasses.replace(rec("c", 1), replace=True))],
                                [3]) == [True]
        assert sink.store_files([(rows([("w", "z")], [700]), dataclasses.replace(rec("c", 1), replace=True))]) == [True]
    assert facts(db) == [("a", 33, 2), ("c", 700, 1)]


def test_a_killed_run_shows_nothing_and_the_next_writer_deletes_its_parts(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    sink = DuckDBSink(DuckDBConfig(path=str(db)))
    sink.open()
    assert sink.store_files([(rows([("x", "y")], [1]), rec("a", 1))]) == [True]
    sink.store_part(rows([("api", "db")], [10]), 1)
    sink.store_part(rows([("api", "db")], [20]), 1)
    sink.con.close()  # killed: the file's record never comes
    with duckdb.connect(str(db), read_only=True) as con:  # a reader sees the stored file only
        assert con.execute("SELECT count(*), sum(bytes) FROM flows").fetchall() == [(1, 1)]
        assert con.execute("SELECT count(*) FROM flow_facts").fetchall() == [(3,)]
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:  # the next writer deletes the parts
        assert count(sink, "flow_facts") == 1 and count(sink, "open_files") == 0
        sink.store_part(rows([("web", None)], [5]), 1)
        assert sink.store_files([(rows([], []), rec("b", 1))], [1]) == [True]
    assert facts(db) == [("a", 1, 1), ("b", 5, 1)]


def view_filter(con: duckdb.DuckDBPyConnection) -> str:
    sql = str(con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'flows'").fetchall()[0][0])
    return sql[sql.find("WHERE"):].replace("(", "").replace(")", "").rstrip(";") if "WHERE" in sql else ""


def test_flows_has_no_filter_unless_a_file_is_open(tmp_path: Path) -> None:
    """Queries of a store where no file is being stored in parts pay for no filter; while
    one is, the view hides from the oldest open file's id; closing with files still open
    deletes them and leaves no filter behind (a later file's rows stay visible)."""
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        assert view_filter(sink.con) == ""
        sink.store_part(rows([("api", "db")], [10]), 1)  # id 1
        sink.store_part(rows([("api", "db")], [20]), 2)  # id 2
        assert view_filter(sink.con).endswith("< 1")
        assert sink.store_files([(rows([], []), rec("a", 1))], [1]) == [True]
        assert view_filter(sink.con).endswith("< 2")
        assert count(sink) == 1
        sink.store_part(rows([("web", None)], [30]), 3)  # id 3
        assert sink.store_files([(rows([("x", "y")], [5]), rec("c", 1))]) == [True]  # id 4
        assert view_filter(sink.con).endswith("< 2") and count(sink) == 1
    with duckdb.connect(str(db), read_only=True) as con:  # stages 2 and 3 deleted at close
        assert view_filter(con) == ""
        assert con.execute("SELECT count(*), sum(bytes) FROM flows").fetchall() == [(2, 15)]
        assert con.execute("SELECT count(*) FROM open_files").fetchall() == [(0,)]
