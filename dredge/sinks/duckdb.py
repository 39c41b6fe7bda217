"""The embedded store: DuckDB, the default sink.

``flows`` is what users query: rolled-up rows with both sides' owners spelled out
(``enrich.rollup.FLOWS_SCHEMA``). It is a view over ``flow_facts`` (ids and metrics) and the
``owners`` dictionary (each distinct owner tuple once), which makes stores several times
cheaper than writing sixteen strings per row. Table ``ingested`` records each replayed file
in the same transaction as its rows, so replaying a file again adds nothing and a crash
mid-replay loses nothing; a large file's rows come in parts, committed one by one but hidden
from ``flows`` until its record is (:meth:`DuckDBSink.store_part`). ``window_start`` is UTC.

Table ``checkpoints`` holds, per (stream, shard), the position the stream daemon reached;
``store_batch`` commits rows and those positions in one transaction, so a daemon restarted
on the same file resumes exactly after what it stored.

The tables and the view are :mod:`dredge.sinks.duckdb_schema`'s; the store's own records
(schema version, rollup window, each file's row ids for ``replay --force``, the files being
stored in parts) :mod:`dredge.sinks.duckdb_meta`'s.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dredge.cores import usable_cores
from dredge.enrich.rollup import Rolled
from dredge.errors import ConfigError, SinkError
from dredge.sinks import duckdb_facts as facts
from dredge.sinks import duckdb_meta as meta
from dredge.sinks.base import IngestRecord, Rows, ShardCheckpoint
from dredge.sinks.duckdb_schema import FACTS_DDL, INGESTED_DDL, OWNERS_DDL, flows_view
from dredge.sinks.metrics import flush_seconds, rows_total
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

@dataclass(frozen=True)
class DuckDBConfig:
    path: str = "dredge.duckdb"
    threads: int = 0  # 0 = the cores this process may run on
    memory_limit: str = ""  # e.g. "2GB"; empty = DuckDB's default

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("sink.duckdb.path", "must not be empty")
        if self.threads < 0:
            raise ConfigError("sink.duckdb.threads", "must be >= 0")
        if self.memory_limit and not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B|bytes)\s*",
                                                  self.memory_limit, re.IGNORECASE):
            raise ConfigError("sink.duckdb.memory_limit",
                              f"a size such as 2GB or 512MiB, not {self.memory_limit!r}")


class DuckDBSink:
    """``batch`` (replay's store; the stream daemon, committing every second, keeps DuckDB's
    defaults):

    - DuckDB's checkpoints do not merge the partly filled row groups each commit leaves
      (``max_vacuum_tasks=0``), unless rows were deleted since the store opened (``replay
      --force``, a failed large file's parts): the closing checkpoint then merges and
      reclaims as usual. The merge made closing a two-worker replay of 2M flows take 0.26 s
      instead of 0.04 s; the row groups it leaves cost no query time that could be measured.
    - An insert runs on all of DuckDB's threads (``preserve_insertion_order=false``: the
      rows of a commit need no order): 1.8M rows in four commits, two threads, 0.86 -> 0.50 s
      of wall time for the same CPU, so the replay's last commit waits less."""

    name = "duckdb"

    def __init__(self, config: DuckDBConfig, batch: bool = False) -> None:
        config.validate()
        self.config = config
        self.batch = batch
        self._deleted = False  # rows deleted since open: the closing checkpoint vacuums
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._hashes: set[str] | None = None
        self._parts: dict[int, _Parts] = {}  # stage -> a large file being stored (replay)
        self._next_id: int | None = None  # the next file id (all of them are given here)

    def open(self) -> None:
        if self._con is not None:
            return
        if self.config.path != ":memory:":
            Path(self.config.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(self.config.path)
        except duckdb.Error as exc:
            raise SinkError(f"cannot open DuckDB database {self.config.path}: {exc}") from exc
        con.execute("SET TimeZone='UTC'")
        # DuckDB counts the machine's cores, not the ones this process may use (taskset, a
        # container's CPU set): its extra threads only contend (one core: close 2x slower)
        con.execute(f"SET threads={int(self.config.threads or usable_cores())}")
        if self.config.memory_limit:
            con.execute("SET memory_limit=?", [self.config.memory_limit])
        if self.batch:
            con.execute("SET max_vacuum_tasks=0")
            con.execute("SET preserve_insertion_order=false")
        con.begin()  # one commit for the schema, not one per statement (~5 ms at each start)
        for ddl in (OWNERS_DDL, FACTS_DDL, INGESTED_DDL):
            con.execute(ddl)
        meta.migrate(con)  # before the view: it reads columns an older store gains here
        # the parts of files a killed replay left unfinished
        self._deleted = meta.drop_open_files(con) > 0
        con.execute(flows_view())
        con.commit()
        self._con = con

    def claim_window(self, window_s: int, key: str = "window") -> None:
        """Record the rollup window, or refuse (ConfigError naming ``key``) one that differs
        from the window the store was written with."""
        with self._lock:
            meta.claim_window(self.con, self.config.path, window_s, key)

    def claim_ephemeral_from(self, ephemeral_from: int, key: str = "ephemeral-from") -> None:
        """Record the service-port setting, or refuse (ConfigError naming ``key``) one that
        differs from the setting the store was written with."""
        with self._lock:
            meta.claim_ephemeral_from(self.con, self.config.path, ephemeral_from, key)

    def file_buckets(self, digest: str, seconds: int) -> list[int]:
        """The ``seconds``-long buckets (epoch s) holding the stored rows of the file with this
        hash: what ``replay --force`` is about to replace (a Druid backfill rebuilds them)."""
        with self._lock:
            found = self.con.execute(
                "SELECT DISTINCT epoch(f.window_start)::BIGINT // ? * ? FROM flow_facts f "
                "JOIN file_ids i ON i.id = f.file_id WHERE i.hash = ? ORDER BY 1",
                [seconds, seconds, digest]).fetchall()
        return [int(r[0]) for r in found]

    def require_replaceable(self) -> None:
        """Refuse (ConfigError) ``replay --force`` when some file's rows cannot be told apart."""
        with self._lock:
            meta.require_replaceable(self.con, self.config.path)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                while self._parts:  # their files were never stored
                    self._delete_parts(self._parts.popitem()[1])
                if self._deleted and self.batch:  # reclaim their space as it closes
                    with contextlib.suppress(duckdb.Error):
                        self._con.execute("RESET max_vacuum_tasks")
                self._con.close()
                self._con = None

    def __enter__(self) -> DuckDBSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise SinkError("DuckDB sink is not open")
        return self._con

    def is_ingested(self, digest: str) -> bool:
        """Was a file with this hash stored? (Read once, then kept current: DuckDB lets one
        process write a database file, so no one else adds to it behind our back.) Once read,
        no lock: a replay worker asking does not wait for the writer's commit to end."""
        hashes = self._hashes
        if hashes is None:
            with self._lock:
                if self._hashes is None:
                    self._hashes = {r[0] for r in self.con.execute("SELECT hash FROM ingested").fetchall()}
                hashes = self._hashes
        return digest in hashes

    def store_file(self, rows: Rows, rec: IngestRecord) -> bool:
        """Rows and the file's record in one transaction. False if the file was already stored."""
        return self.store_files([(rows, rec)])[0]

    def store_part(self, rows: Rows, stage: int) -> None:
        """Part of a large file's rows, committed into ``flow_facts`` at once under the file's
        id, which ``open_files`` lists until the file's record is committed: ``flows`` shows
        no row of that id (nor of a later one) meanwhile (:func:`flows_view`), so no query,
        not even after a crash, sees part of a file.
        One transaction per part: DuckDB holds what an open transaction appended in memory
        (~60 bytes a row: a 5M-flow file in one took 250 MB more). ``stage``: the caller's
        number for the file, the same for all its parts; :meth:`store_files` makes the file
        visible with its record, :meth:`drop_part` deletes its parts. A killed replay's parts
        are deleted when the store is next opened for writing."""
        with self._lock:
            part = self._parts.get(stage)
            con = self.con
            try:
                con.begin()
                if part is None:
                    part = _Parts(self._take_file_id())
                    con.execute("INSERT INTO open_files VALUES (?)", [part.file_id]).fetchall()
                    con.execute(self._view_without(None, part.file_id))
                facts.append(con, facts.owned(con, rows), np.full(rows.num_rows, part.file_id, np.int32))
                con.commit()
            except Exception as exc:
                _rollback(con)
                raise SinkError(f"DuckDB refused {rows.num_rows} rows of a large file: {exc}") from exc
            self._parts[stage] = part
            part.rows += rows.num_rows

    def drop_part(self, stage: int) -> None:
        """Delete the parts of a stage whose file will not be stored (it failed after some)."""
        with self._lock:
            part = self._parts.pop(stage, None)
            if part is not None:
                self._delete_parts(part)

    def _delete_parts(self, part: _Parts) -> None:
        """(Under the lock.) If this fails, the rows stay hidden; the next open deletes them."""
        con = self.con
        try:
            con.begin()
            self._deleted = True
            meta.drop_open_files(con, part.file_id)
            con.execute(self._view_without(part))
            con.commit()
        except duckdb.Error as exc:
            _rollback(con)
            log.warning("store_parts_left", file_id=part.file_id, rows=part.rows, error=str(exc)[:200])

    def _view_without(self, closing: _Parts | None, opening: int | None = None) -> str:
        """(Under the lock.) ``flows`` once ``closing`` is stored or dropped, or ``opening``
        has begun: hiding from the oldest file still open, if any."""
        ids = [p.file_id for p in self._parts.values() if p is not closing]
        ids += [] if opening is None else [opening]
        return flows_view(min(ids) if ids else None)

    def _take_file_id(self) -> int:
        """A new file id. Every id is given here, under the lock, counted from the store's."""
        if self._next_id is None:
            self._next_id = meta.next_file_id(self.con)
        fid, self._next_id = self._next_id, self._next_id + 1
        return fid

    def store_files(self, batch: list[tuple[Rows, IngestRecord]],
                    stages: Sequence[int | None] = ()) -> list[bool]:
        """Several files' rows and records in ONE transaction (a commit costs a sync to disk).

        ``stages``: per file, the stage of its parts stored before by :meth:`store_part`
        (None: all its rows are in the batch). Such a file is committed in its own
        transaction, the one holding its parts; or rolled back if it is not stored.

        Returns, per file, whether it was stored (False: already ingested). On failure nothing
        of the failed transaction is stored and SinkError is raised.
        """
        t0 = time.perf_counter()
        stage_of = list(stages) or [None] * len(batch)
        stored = [False] * len(batch)
        n = 0
        with self._lock:
            plain = [i for i, st in enumerate(stage_of) if st is None or st not in self._parts]
            for i, st in enumerate(stage_of):
                if st is not None and st in self._parts:
                    part = self._parts.pop(st)
                    stored[i] = self._commit_parts(part, *batch[i])
                    n += (part.rows + batch[i][0].num_rows) if stored[i] else 0
            if plain:
                items = [batch[i] for i in plain]
                for i, ok in zip(plain, self._commit_files(items), strict=True):
                    stored[i] = ok
                    n += batch[i][0].num_rows if ok else 0
        rows_total.labels(self.name, "stored").inc(n)
        flush_seconds.labels(self.name).observe(time.perf_counter() - t0)
        return stored

    def _commit_files(self, batch: list[tuple[Rows, IngestRecord]]) -> list[bool]:
        """Files whose rows are all here, in one transaction on the store's connection."""
        stored: list[bool] = []
        con = self.con
        try:
            con.begin()
            hashes = [rec.hash for _, rec in batch]
            marks = ", ".join("?" for _ in hashes)
            present = {r[0] for r in con.execute(
                f"SELECT hash FROM ingested WHERE hash IN ({marks})", hashes).fetchall()} if hashes else set()
            known = meta.known_file_ids(con, hashes)
            tables, ids, records, new_ids = [], [], [], []
            replaced: set[str] = set()
            for rows, rec in batch:
                again = rec.hash in present
                if again and not (rec.replace and rec.hash not in replaced):
                    stored.append(False)
                    continue
                present.add(rec.hash)
                stored.append(True)
                if again:  # --force: the file's earlier rows go, in this transaction
                    fid = known.get(rec.hash)
                    if fid is None:
                        raise SinkError(f"{rec.path}: stored without a file id, its rows "
                                        "cannot be replaced")
                    con.execute("DELETE FROM flow_facts WHERE file_id = ?", [fid]).fetchall()
                    self._deleted = True
                    meta.update_record(con, rec)
                    replaced.add(rec.hash)
                else:
                    fid = self._take_file_id()
                    new_ids.append([rec.hash, fid])
                    records.append(meta.record(rec))
                if rows.num_rows:
                    tables.append(rows)
                    ids.append((fid, rows.num_rows))
            if tables:  # one insert for the whole batch: each statement has a fixed cost
                rolled = Rolled.concat([r if isinstance(r, Rolled) else Rolled.from_table(r) for r in tables])
                facts.append(con, facts.owned(con, rolled),
                             np.repeat([i for i, _ in ids], [n for _, n in ids]))
            if records:
                con.executemany(meta.INSERT_RECORD, records)
                con.executemany("INSERT INTO file_ids VALUES (?, ?)", new_ids)
            con.commit()
            if self._hashes is not None:
                self._hashes.update(h for h, ok in zip(hashes, stored, strict=True) if ok)
        except Exception as exc:  # whatever failed, the transaction must not stay open
            _rollback(con)
            rows_total.labels(self.name, "failed").inc(sum(r.num_rows for r, _ in batch))
            raise SinkError(f"DuckDB refused a batch of {len(batch)} file(s): {exc}") from exc
        return stored

    def _commit_parts(self, part: _Parts, rows: Rows, rec: IngestRecord) -> bool:
        """A large file: its last rows and its record, and its id out of ``open_files``, in
        one transaction (the file shows whole, or its parts are deleted)."""
        con = self.con
        try:
            con.begin()
            present = con.execute("SELECT 1 FROM ingested WHERE hash = ?", [rec.hash]).fetchall()
            if present and not rec.replace:
                con.rollback()
                self._delete_parts(part)
                return False
            if present:  # --force: the file's earlier rows go; its new rows have a new id
                old = meta.known_file_ids(con, [rec.hash]).get(rec.hash)
                if old is None:
                    raise SinkError(f"{rec.path}: stored without a file id, its rows cannot be replaced")
                con.execute("DELETE FROM flow_facts WHERE file_id = ?", [old]).fetchall()
                self._deleted = True
                meta.update_record(con, rec)
                con.execute("UPDATE file_ids SET id = ? WHERE hash = ?", [part.file_id, rec.hash]).fetchall()
            else:
                con.execute(meta.INSERT_RECORD, meta.record(rec)).fetchall()
                con.execute("INSERT INTO file_ids VALUES (?, ?)", [rec.hash, part.file_id]).fetchall()
            if rows.num_rows:
                facts.append(con, facts.owned(con, rows), np.full(rows.num_rows, part.file_id, np.int32))
            con.execute("DELETE FROM open_files WHERE id = ?", [part.file_id]).fetchall()
            con.execute(self._view_without(part))
            con.commit()
        except Exception as exc:
            _rollback(con)
            self._delete_parts(part)
            rows_total.labels(self.name, "failed").inc(part.rows + rows.num_rows)
            raise SinkError(f"DuckDB refused {rec.path} ({part.rows + rows.num_rows} rows): {exc}") from exc
        if self._hashes is not None:
            self._hashes.add(rec.hash)
        return True

    def store_batch(self, rows: Rows | Sequence[Rows], checkpoints: list[ShardCheckpoint]) -> None:
        """Rows (one table or several) and shard positions in ONE transaction: both or
        neither (SinkError)."""
        t0 = time.perf_counter()
        parts = [rows] if isinstance(rows, Rolled | pa.Table) else list(rows)
        n = sum(p.num_rows for p in parts)
        with self._lock:
            con = self.con
            try:
                self._ensure_checkpoints(con)
                con.begin()
                for part in parts:
                    self._insert(con, part)
                if checkpoints:
                    con.executemany(
                        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)"
                        " ON CONFLICT (stream, shard_id) DO UPDATE SET sequence = excluded.sequence,"
                        " sub_sequence = excluded.sub_sequence,"
                        " records = checkpoints.records + excluded.records,"
                        " updated_at = excluded.updated_at",
                        [[c.stream, c.shard_id, c.sequence, c.sub_sequence, c.records]
                         for c in checkpoints])
                con.commit()
            except Exception as exc:  # anything inside the transaction: roll it back, report
                _rollback(con)
                rows_total.labels(self.name, "failed").inc(n)
                raise SinkError(f"DuckDB refused {n} rows and {len(checkpoints)}"
                                f" checkpoint(s): {exc}") from exc
        rows_total.labels(self.name, "stored").inc(n)
        flush_seconds.labels(self.name).observe(time.perf_counter() - t0)

    def _ensure_checkpoints(self, con: duckdb.DuckDBPyConnection) -> None:
        # Created on first use by the stream daemon; replay never needs the table.
        if not getattr(self, "_has_checkpoints", False):
            con.execute(meta.CHECKPOINTS_DDL)
            self._has_checkpoints = True

    def checkpoints(self, stream: str) -> dict[str, tuple[str, int]]:
        """shard id -> (sequence or SHARD_END, sub-sequence) stored for ``stream``."""
        with self._lock:
            self._ensure_checkpoints(self.con)
            found = self.con.execute(
                "SELECT shard_id, sequence, sub_sequence FROM checkpoints WHERE stream = ?",
                [stream]).fetchall()
        return {str(s): (str(q), int(n)) for s, q, n in found}

    def _insert(self, con: duckdb.DuckDBPyConnection, rows: Rows) -> None:
        """Rolled-up rows of the stream inside the caller's transaction (file id NULL)."""
        facts.append(con, facts.owned(con, rows), None)

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            return self.con.sql(sql, params=params or None).to_arrow_table()


@dataclass
class _Parts:
    """A large file being stored in parts: the file id they carry, and how many rows."""

    file_id: int
    rows: int = 0


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.rollback()

