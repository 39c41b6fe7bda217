"""``dredge query`` on the DuckDB store: opened read-only, so several readers (another
``dredge query``, ``dredge serve``) can read one file at once. A store written before its
``flows`` view existed is opened read-write once (``DuckDBSink`` creates the view).

A store that a running daemon writes cannot be opened at all (DuckDB's lock): ask the
daemon instead, ``dredge query --server``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dredge.errors import SinkError

if TYPE_CHECKING:
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
    finally:
        con.close()
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    with DuckDBSink(DuckDBConfig(path=path)) as sink:
        return sink.query(sql, params)
