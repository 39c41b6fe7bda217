"""The store's own records: the rollup window (a different one refused), the schema version,
and per-file row ids that let ``replay --force`` replace a file's rows exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dredge.errors import ConfigError
from dredge.query.spec import QuerySpec
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


def _as_version_2(path: str) -> None:
    """Turn a store into what schema version 2 wrote: no ``port`` column, the view without it."""
    from dredge.sinks.duckdb_schema import flows_view

    con = duckdb.connect(path)
    try:
        con.execute("DROP VIEW flows")
        con.execute("ALTER TABLE flow_facts DROP COLUMN port")
        con.execute(flows_view().replace(", f.port", ""))
        con.execute("DROP TABLE open_files")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        con.execute("DELETE FROM meta WHERE key = 'ephemeral_from'")
    finally:
        con.close()


def test_a_version_2_store_gains_the_port_in_place(tmp_path: Path) -> None:
    from dredge.query.spec import Filter, QuerySpec
    from dredge.query.store import query_file

    path = str(tmp_path / "v2.duckdb")
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        sink.claim_window(60)
        sink.store_files([(rows([("api", "db"), ("web", "db")], [10, 20]), rec("a", 2))])
    _as_version_2(path)
    con = duckdb.connect(path, read_only=True)
    try:
        assert "port" not in {r[0] for r in con.execute("DESCRIBE flows").fetchall()}
    finally:
        con.close()
    # a query reads the older store as it is: the port is NULL for old rows, nothing written
    spec = QuerySpec(kind="top", by=("port",))
    sql, params = spec.sql()
    before = Path(path).read_bytes()
    assert query_file(path, sql, params).to_pylist() == [
        {"port": None, "bytes": 30, "packets": 2, "flows": 2}]
    assert Path(path).read_bytes() == before
    new = rows([("api", "db")], [5])
    new = new.set_column(new.schema.get_field_index("port"), "port", pa.array([443], pa.int32()))
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        assert sink.query("SELECT value FROM meta WHERE key = 'schema_version'"
                          ).to_pylist() == [{"value": str(SCHEMA_VERSION)}] and SCHEMA_VERSION == 4
        sink.claim_window(60)
        sink.claim_ephemeral_from(32768)  # old rows hold no port: any setting fits them
        assert sink.store_files([(new, rec("b", 1))]) == [True]
        assert totals(sink) == [("api", "db", 15, 2), ("web", "db", 20, 1)]
    sql, params = QuerySpec(kind="top", by=("port",), filters=(Filter.parse("port=https"),)).sql()
    assert query_file(path, sql, params).to_pylist() == [
        {"port": 443, "bytes": 5, "packets": 1, "flows": 1}]
    # a store already current answers a query that names a column nobody has with the error
    with pytest.raises(duckdb.BinderException):
        query_file(path, "SELECT no_such_column FROM flows", [])


def test_a_different_ephemeral_from_is_refused_naming_both(tmp_path: Path) -> None:
    path = str(tmp_path / "d.duckdb")
    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        sink.claim_ephemeral_from(32768)
        sink.claim_ephemeral_from(32768)
        with pytest.raises(ConfigError, match=r"^ephemeral-from: .*ephemeral_from 32768, not 1024"):
            sink.claim_ephemeral_from(1024)
        with pytest.raises(ConfigError, match=r"^pipeline\.ephemeral_from: "):
            sink.claim_ephemeral_from(49152, "pipeline.ephemeral_from")
        assert sink.query("SELECT value FROM meta WHERE key = 'ephemeral_from'"
                          ).to_pylist() == [{"value": "32768"}]


def test_serve_reads_a_version_2_store_without_writing_it(tmp_path: Path) -> None:
    """``dredge serve`` over an older store in a read-only place: port queries answer (NULL
    for the old rows) on every connection of the pool, and the file is never written."""
    from dredge.serve.backends import DuckDBBackend

    path = tmp_path / "v2.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(path))) as sink:
        sink.store_files([(rows([("api", "db")], [10]), rec("a", 1))])
    _as_version_2(str(path))
    before = path.read_bytes()
    path.chmod(0o444)
    backend = DuckDBBackend.read_only(str(path), timeout_s=30)
    try:
        sql, params = QuerySpec(kind="top", by=("port", "src_app")).sql()
        with ThreadPoolExecutor(4) as pool:  # several cursors at once: each sees the view
            answers = list(pool.map(lambda _: backend._run(sql, params).to_pylist(), range(8)))
        assert answers == [[{"port": None, "src_app": "api", "bytes": 10, "packets": 1,
                             "flows": 1}]] * 8
    finally:
        backend.close()
        path.chmod(0o644)
    assert path.read_bytes() == before
