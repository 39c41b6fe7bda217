"""``dredge query`` on the DuckDB store: opened read-only, so several readers (another
``dredge query``, ``dredge serve``) can read one file at once. A store written before its
``flows`` view existed, or before a column the query reads (``port``: schema version 3), is
opened read-write once (``DuckDBSink`` creates the view and migrates the store in place).

``dredge serve`` reads a store read-only for as long as it runs: :func:`upgrade` first brings
a store of an earlier version up to date (when it can be written; else its queries on the new
columns fail, the others answer).

A store that a running daemon writes cannot be opened at all (DuckDB's lock): ask the
daemon instead, ``dredge query --server``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dredge.errors import SinkError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def query_file(path: str, sql: str, params: list[object]) -> pa.Table:
    import duckdb

    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise SinkError(f"cannot open DuckDB database {path}: {exc}") from exc
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_progress_bar = false")  # stdout is for the answer
        return con.sql(sql, params=params or None).to_arrow_table()
    except duckdb.CatalogException:
        pass  # no flows view yet: below, read-write
    except duckdb.BinderException:
        if _current(con):
            raise
        # a store of an earlier schema version: below, read-write (migrated in place)
    finally:
        con.close()
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        return sink.query(sql, params)


def upgrade(path: str) -> bool:
    """Migrate a store of an earlier schema version in place (opened read-write once); True
    when it is current afterwards. A store that cannot be written is left as it is."""
    import duckdb

    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error:
        return False  # the caller's own open reports why
    try:
        if _current(con):
            return True
    finally:
        con.close()
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    try:
        with DuckDBSink(DuckDBConfig(path=path)):
            return True
    except (SinkError, duckdb.Error, OSError):
        return False


def _current(con: duckdb.DuckDBPyConnection) -> bool:
    """Does the store's ``flows`` view have every column this version writes?"""
    from dredge.enrich.rollup import FLOWS_SCHEMA

    found = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'flows'").fetchall()}
    return set(FLOWS_SCHEMA.names) <= found
