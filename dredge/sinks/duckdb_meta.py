"""What the DuckDB store records about itself: its schema version, its rollup settings, and
which rows each replayed file contributed.

``meta`` (key, value) holds ``schema_version``, ``window_s`` and ``ephemeral_from``. Rows rolled
up in 60-second windows and rows rolled up in 300-second windows cannot share one store (a
per-minute query would see gaps and five-minute spikes), so the first writer records its
window and a writer with another is refused (:func:`claim_window`, exit status 2 naming both
windows). The same holds for the service port's ``ephemeral_from`` (:mod:`dredge.flowlog.ports`):
port 40000 stored as itself beside port 40000 stored as 0 would split one service in two.

Schema version 3 added ``flow_facts.port``; :func:`migrate` adds it to an older store in
place, NULL for the rows already there (their service port was not recorded).

``file_ids`` maps a replayed file's content hash to the number its rows carry in
``flow_facts.file_id`` (NULL for the stream daemon's rows). ``dredge replay --force`` deletes
exactly those rows before storing the file's new ones, in the same transaction. Files stored
before the column existed (schema version 1) have no number: their rows cannot be told
apart from other files', so ``--force`` refuses such a store (:func:`require_replaceable`)
rather than add their rows a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dredge.errors import ConfigError
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    import duckdb

    from dredge.sinks.base import IngestRecord

# 1: no meta, no file ids; 2: meta (window_s) and per-file row ids; 3: flow_facts.port;
# 4: open_files (a large file's parts are committed as they come, hidden until it is whole)
SCHEMA_VERSION = 4

META_DDL = "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
FILE_IDS_DDL = """
CREATE TABLE IF NOT EXISTS file_ids (
  hash VARCHAR PRIMARY KEY,
  id INTEGER NOT NULL
)"""

# the stream daemon's position in each shard, committed with the rows it read
CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS checkpoints (
  stream VARCHAR NOT NULL,
  shard_id VARCHAR NOT NULL,
  sequence VARCHAR NOT NULL,
  sub_sequence BIGINT NOT NULL,
  records BIGINT NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  PRIMARY KEY (stream, shard_id)
)"""

# the ids of files whose parts are in flow_facts but whose record is not: the flows view
# hides their rows (and later files'); the next writer to open the store deletes them
OPEN_FILES_DDL = "CREATE TABLE IF NOT EXISTS open_files (id INTEGER PRIMARY KEY)"

log = get_logger(__name__)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a store of any earlier version to this one (idempotent): ``meta``,
    ``file_ids`` and the ``flow_facts.file_id`` and ``port`` columns."""
    con.execute(META_DDL)
    con.execute(FILE_IDS_DDL)
    con.execute(OPEN_FILES_DDL)
    # pragma_table_info, not information_schema: binding that view costs ~25 ms per connection
    cols = {r[0] for r in con.execute("SELECT name FROM pragma_table_info('flow_facts')").fetchall()}
    if "file_id" not in cols:
        con.execute("ALTER TABLE flow_facts ADD COLUMN file_id INTEGER")
    if "port" not in cols:
        con.execute("ALTER TABLE flow_facts ADD COLUMN port INTEGER")
    con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value", [str(SCHEMA_VERSION)]).fetchall()


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta").fetchall()}


def claim_window(con: duckdb.DuckDBPyConnection, path: str, window_s: int, key: str) -> None:
    """Record ``window_s`` as the store's rollup window, or refuse (ConfigError naming
    ``key``) when the store already holds another."""
    if _claim(con, path, "window_s", window_s, key,
              lambda stored: f"the store {path} holds {stored}-second windows, not "
                             f"{window_s}-second ones: use {stored} with this store, "
                             "or another store for the new window"):
        return
    if con.execute("SELECT count(*) FROM (SELECT 1 FROM flow_facts LIMIT 1)").fetchall()[0][0]:
        # A store written before the window was recorded: its rows' window is not known.
        log.warning("store_window_unverified", store=path, window_s=window_s)


def claim_ephemeral_from(con: duckdb.DuckDBPyConnection, path: str, ephemeral_from: int,
                         key: str) -> None:
    """Record the service port's ``ephemeral_from``, or refuse (ConfigError naming ``key``)
    another. Rows stored before it was recorded carry no port at all: any value fits them."""
    _claim(con, path, "ephemeral_from", ephemeral_from, key,
           lambda stored: f"the store {path} holds service ports with ephemeral_from "
                          f"{stored}, not {ephemeral_from}: use {stored} with this store, "
                          "or another store for the new setting")


def _claim(con: duckdb.DuckDBPyConnection, path: str, name: str, value: int, key: str,
           refusal: Callable[[str], str]) -> bool:
    """Record ``name`` = ``value`` in ``meta`` when absent (False); True when the store
    already holds that value; ConfigError(key, refusal(stored)) when it holds another."""
    stored = read_meta(con).get(name)
    if stored is None:
        con.execute("INSERT INTO meta VALUES (?, ?)", [name, str(value)]).fetchall()
        return False
    if int(stored) != value:
        raise ConfigError(key, refusal(stored))
    return True


def require_replaceable(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse ``--force`` on a store holding files whose rows carry no file id."""
    old = int(con.execute("SELECT count(*) FROM ingested i ANTI JOIN file_ids f ON f.hash = i.hash"
                          ).fetchall()[0][0])
    if old:
        raise ConfigError("force", f"the store {path} holds {old} file(s) recorded before "
                                   "Dredge kept each file's rows apart; their rows cannot be "
                                   "replaced exactly: replay into a new store instead")


def known_file_ids(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, int]:
    """hash -> id of the files among ``hashes`` that have one."""
    if not hashes:
        return {}
    marks = ", ".join("?" for _ in hashes)
    return {str(h): int(i) for h, i in con.execute(
        f"SELECT hash, id FROM file_ids WHERE hash IN ({marks})", hashes).fetchall()}


def next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    """The first id no file has, stored or open."""
    return int(con.execute("SELECT coalesce(max(id), 0) FROM (SELECT id FROM file_ids UNION ALL "
                           "SELECT id FROM open_files)").fetchall()[0][0]) + 1


def drop_open_files(con: duckdb.DuckDBPyConnection, file_id: int | None = None) -> int:
    """Delete the parts of an unfinished file (``file_id``), or of every one (a killed
    replay's, when the store opens for writing), in the caller's transaction; the number of
    rows deleted."""
    where = "" if file_id is None else f" WHERE id = {int(file_id)}"
    found = con.execute(f"SELECT count(*) FROM open_files{where}").fetchall()[0][0]
    if not found:
        return 0
    n: int = con.execute(f"DELETE FROM flow_facts WHERE file_id IN (SELECT id FROM open_files{where})"
                    ).fetchall()[0][0]
    con.execute(f"DELETE FROM open_files{where}").fetchall()
    if file_id is None:
        log.warning("store_unfinished_files_deleted", files=found, rows=n,
                    reason="a replay stopped while storing them; replay them again")
    return n


INSERT_RECORD = "INSERT INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)"


def record(rec: IngestRecord) -> list[Any]:
    """The values of an ``ingested`` row but its time (``INSERT_RECORD``)."""
    return [rec.hash, rec.path, rec.size, rec.records, rec.nodata, rec.skipdata, rec.malformed,
            rec.truncated, rec.rows, rec.seconds]


def update_record(con: duckdb.DuckDBPyConnection, rec: IngestRecord) -> None:
    """``replay --force``: the file's record says what this reading of it found."""
    con.execute("UPDATE ingested SET path = ?, size = ?, records = ?, nodata = ?, skipdata = ?,"
                " malformed = ?, truncated = ?, rows = ?, seconds = ?, ingested_at = now()::TIMESTAMP"
                " WHERE hash = ?", [*record(rec)[1:], rec.hash]).fetchall()
