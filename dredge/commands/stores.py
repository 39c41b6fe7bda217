"""The DuckDB store a command is given (``--db``), checked before any work: a query, ``serve``
or ``druid backfill`` needs a Dredge store (read-only: it is never changed, and someone else's
database is not given Dredge's tables); ``replay`` needs a place it can write and, if the
file exists, a Dredge store or an empty database. One ``ConfigError`` naming the option.
"""

from __future__ import annotations

from pathlib import Path

from dredge.errors import ConfigError
from dredge.settings import check_input_file, check_output_file

STORE_TABLE = "flow_facts"  # every Dredge store has it (dredge.sinks.duckdb)


def _tables(key: str, path: str, busy_hint: str) -> set[str]:
    import duckdb

    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():  # a daemon writes it: not a bad store
            raise ConfigError(key, f"{path} is in use by another process ({text.splitlines()[0]}); "
                              f"{busy_hint}") from None
        raise ConfigError(key, f"{path} is not a readable DuckDB database "
                          f"({text.splitlines()[0] if text else type(exc).__name__})") from None
    try:
        # duckdb_tables()/duckdb_views(): information_schema costs ~25 ms more to bind
        rows = con.execute("SELECT table_name FROM duckdb_tables() UNION ALL "
                           "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    except duckdb.Error as exc:
        raise ConfigError(key, f"{path} is a damaged DuckDB database ({exc})") from None
    finally:
        con.close()
    return {str(r[0]) for r in rows}


def existing_store(path: str, key: str = "db") -> None:
    """A Dredge store to read."""
    if not Path(path).exists():
        raise ConfigError(key, f"no database at {path} (run `dredge replay` first)")
    check_input_file(key, path)
    if Path(path).stat().st_size == 0:
        raise ConfigError(key, f"{path} is an empty file, not a Dredge store")
    if STORE_TABLE not in _tables(key, path, "ask the process with --server"):
        raise ConfigError(key, f"{path} is not a Dredge store (no {STORE_TABLE} table)")


def store_to_write(path: str, key: str = "db") -> None:
    """A Dredge store to write: a new file, a Dredge store, or a database with no tables."""
    check_output_file(key, path)
    p = Path(path)
    if p.exists() and p.stat().st_size > 0:
        tables = _tables(key, path, "stop it first, or give another --db")
        if tables and STORE_TABLE not in tables:
            raise ConfigError(key, f"{path} is not a Dredge store (tables: "
                              f"{', '.join(sorted(tables)[:5])}); give another --db")
