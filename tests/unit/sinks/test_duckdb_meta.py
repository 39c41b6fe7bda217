"""The store's own records: the rollup window (a different one refused), the schema version,
and per-file row ids that let ``replay --force`` replace a file's rows exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from dredge.errors import ConfigError
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sinks.duckdb_meta import SCHEMA_VERSION
from tests.unit.sinks.test_duckdb import rec, rows


def totals(sink: DuckDBSink) -> list[tuple[object, ...]]:
    t = sink.query("SELECT src_app, dst_app, sum(bytes)::BIGINT AS b, count(*) AS n FROM flows "
                   "GROUP BY ALL ORDER BY ALL")
    return list(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))


def test_force_replaces_exactly_the_files_earlier_rows(tmp_path: Path) -> None:
    with DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb"))) as sink:
        assert sink.store_files([(rows([("api", "db"), ("api", "web")], [10, 20]), rec("a", 2)),
                                 (rows([("api", "db")], [5]), rec("b", 1))]) == [True, True]
        assert sink.file_buckets("a", 3600) == [1795600800] and sink.file_buckets("z", 3600) == []
        # without replace: refused as before; with it: a's two rows give way to one new row
        assert sink.store_files([(rows([("x", "y")], [1]), rec("a", 1))]) == [False]
        again = replace(rec("a", 1), replace=True, malformed=3)
        assert sink.store_files([(rows([("api", "db")], [7]), again),
                                 (rows([("q", "r")], [9]), replace(rec("a", 1), replace=True))]
                                ) == [True, False]  # the same file twice in one batch: once
        assert totals(sink) == [("api", "db", 12, 2)]
        assert sink.query("SELECT count(*) AS n, max(malformed) AS m FROM ingested"
                          ).to_pylist() == [{"n": 2, "m": 3}]
        # a forced file never stored before is simply stored
        assert sink.store_files([(rows([("c", "d")], [4]), replace(rec("c", 1), replace=True))]
                                ) == [True]
        assert totals(sink) == [("api", "db", 12, 2), ("c", "d", 4, 1)]
        # the stream daemon's rows carry no file id and are never touched by a replace
        sink.store_batch(rows([("s", "t")], [100]), [])
        sink.store_files([(rows([("api", "db")], [1]), replace(rec("b", 1), replace=True))])
        assert totals(sink) == [("api", "db", 8, 2), ("c", "d", 4, 1), ("s", "t", 100, 1)]


def test_a_different_window_is_refused_naming_both(tmp_path: Path) -> None:
    path = str(tmp_path / "d.duckdb")
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        sink.claim_window(60)
        sink.claim_window(60)  # the same again: fine
        with pytest.raises(ConfigError, match=r"^pipeline\.window_s: .*60-second.*300-second"):
            sink.claim_window(300, "pipeline.window_s")
    con = duckdb.connect(path, read_only=True)
    try:
        assert dict(con.execute("SELECT key, value FROM meta").fetchall()) == {
            "schema_version": str(SCHEMA_VERSION), "window_s": "60"}
    finally:
        con.close()


def test_a_store_from_before_file_ids_is_migrated_and_refuses_force(tmp_path: Path) -> None:
    path = str(tmp_path / "old.duckdb")
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        sink.store_files([(rows([("api", "db")], [10]), rec("a", 1))])
    con = duckdb.connect(path)  # make it look like a version-1 store
    con.execute("DROP TABLE meta")
    con.execute("DROP TABLE file_ids")
    con.execute("ALTER TABLE flow_facts DROP COLUMN file_id")
    con.close()
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        assert totals(sink) == [("api", "db", 10, 1)]  # its rows kept
        sink.claim_window(300)  # no window recorded: recorded now
        with pytest.raises(ConfigError, match=r"^force: .*1 file\(s\) recorded before"):
            sink.require_replaceable()
        # new files are stored with ids as usual
        assert sink.store_files([(rows([("x", "y")], [1]), rec("n", 1))]) == [True]
    with DuckDBSink(DuckDBConfig(path=path)) as sink, pytest.raises(ConfigError, match="60-second"):
        sink.claim_window(60)
