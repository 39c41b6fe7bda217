"""The DuckDB store's staging table: a large replayed file's rows, committed in parts.

Replay rolls a large file up in parts (``ReplayConfig.part_rows``) so that its memory does
not grow with the file. Each part is committed on its own into ``flow_facts_staging``
(``file_id`` there is the part's *stage*, a number for one file of this run), which nobody
queries. When the whole file is read, :func:`move` copies the stage into ``flow_facts``
with the file's real id in the transaction that records the file in ``ingested`` (and, for
``replay --force``, deletes its earlier rows): readers see all of a file's rows or none, and
a replay killed midway leaves only staging rows, which the next staging run drops.

The staging table copies ``flow_facts``' columns when it is made, so it follows the fact
table's schema whatever version the store is at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

STAGING = "flow_facts_staging"


def create(con: duckdb.DuckDBPyConnection) -> None:
    """An empty staging table shaped like ``flow_facts`` (leftovers of a killed run go)."""
    con.execute(f"CREATE OR REPLACE TABLE {STAGING} AS SELECT * FROM flow_facts LIMIT 0")


def move(con: duckdb.DuckDBPyConnection, stage: int, file_id: int) -> None:
    """Inside the caller's transaction: the stage's rows into ``flow_facts`` as ``file_id``'s."""
    con.execute(f"INSERT INTO flow_facts BY NAME SELECT * REPLACE (CAST(? AS INTEGER) AS file_id)"
                f" FROM {STAGING} WHERE file_id = ?", [file_id, stage]).fetchall()


def clear(con: duckdb.DuckDBPyConnection, stages: list[int]) -> None:
    """Inside the caller's transaction: forget these stages' rows (moved, or not wanted)."""
    if stages:
        marks = ", ".join("?" for _ in stages)
        con.execute(f"DELETE FROM {STAGING} WHERE file_id IN ({marks})", stages).fetchall()


def drop_if_empty(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the staging table when nothing waits in it (the store stays as it was)."""
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                        [STAGING]).fetchall()[0][0]
    if found and not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {STAGING} LIMIT 1)"
                                 ).fetchall()[0][0]:
        con.execute(f"DROP TABLE {STAGING}")
