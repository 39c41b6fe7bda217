"""``dredge query`` on the DuckDB store: opened read-only, so several readers (another
``dredge query``, ``dredge serve``) can read one file at once. A store written before its
``flows`` view existed is opened read-write once (``DuckDBSink`` creates the view).

A store of an earlier schema version (before ``port``: version 3) is read as it is, never
written by a query: :func:`as_current` puts a temporary ``flows`` view over it, in the reading
connection only, with the columns it lacks as NULL ("not recorded"). The next writer
(``replay``, ``run``) migrates the file itself.

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
        as_current(con)
        return con.sql(sql, params=params or None).to_arrow_table()
    except duckdb.CatalogException:
        pass  # no flows view yet: below, read-write
    finally:
        con.close()
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        return sink.query(sql, params)


def as_current(con: duckdb.DuckDBPyConnection) -> None:
    """On a read-only connection to an older store: a temporary ``flows`` view that adds the
    columns this version writes and the store lacks, as NULL. Nothing is written."""
    from dredge.enrich.rollup import FLOWS_SCHEMA

    # duckdb_columns(): information_schema costs ~25 ms more to bind
    found = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() "
        "WHERE table_name = 'flows' AND database_name = current_database()").fetchall()}
    if not found:
        return  # no view at all: the caller's query says so (CatalogException)
    missing = [f for f in FLOWS_SCHEMA if f.name not in found]
    if missing:
        types = {"int32": "INTEGER", "int16": "SMALLINT", "int8": "TINYINT", "int64": "BIGINT",
                 "string": "VARCHAR"}
        extra = ", ".join(f"CAST(NULL AS {types[str(f.type)]}) AS {f.name}" for f in missing)
        (db,) = con.execute("SELECT current_database()").fetchone() or ("",)
        quoted = '"' + str(db).replace('"', '""') + '"'
        con.execute(f"CREATE TEMP VIEW flows AS SELECT *, {extra} FROM {quoted}.main.flows")
