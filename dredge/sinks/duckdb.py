"""The embedded store: DuckDB, the default sink.

``flows`` is what users query: rolled-up rows with both sides' owners spelled out
(``enrich.rollup.FLOWS_SCHEMA``). It is a view over ``flow_facts`` (ids and metrics) and the
``owners`` dictionary (each distinct owner tuple once), which makes stores several times
cheaper than writing sixteen strings per row. Table ``ingested`` records each replayed file in the same transaction as its rows, so replaying
a file again adds nothing and a crash mid-replay loses nothing. ``window_start`` is UTC.

Table ``checkpoints`` holds, per (stream, shard), the position the stream daemon reached;
``store_batch`` commits rows and those positions in one transaction, so a daemon restarted
on the same file resumes exactly after what it stored.

The store's own records (schema version, rollup window, each file's row ids for ``replay
--force``) are :mod:`dredge.sinks.duckdb_meta`'s.
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
import pyarrow.compute as pc

from dredge.enrich.rollup import Rolled
from dredge.errors import ConfigError, SinkError
from dredge.index.snapshot import OWNER_FIELDS
from dredge.sinks import duckdb_meta as meta
from dredge.sinks import duckdb_stage as staging
from dredge.sinks.base import IngestRecord, Rows, ShardCheckpoint
from dredge.sinks.metrics import flush_seconds, rows_total

OWNERS_DDL = """
CREATE TABLE IF NOT EXISTS owners (
  id INTEGER PRIMARY KEY,
  key VARCHAR NOT NULL UNIQUE,
  app VARCHAR, cluster VARCHAR, account VARCHAR, region VARCHAR,
  az VARCHAR, vpc VARCHAR, subnet VARCHAR, type VARCHAR
)"""

FACTS_DDL = """
CREATE TABLE IF NOT EXISTS flow_facts (
  window_start TIMESTAMP NOT NULL,
  src_owner INTEGER NOT NULL, dst_owner INTEGER NOT NULL,
  protocol SMALLINT, action TINYINT, flow_direction TINYINT, traffic_path TINYINT,
  bytes BIGINT NOT NULL, packets BIGINT NOT NULL, flows BIGINT NOT NULL,
  port INTEGER
)"""


def _side(alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{f} AS {prefix}_{f}" for f in OWNER_FIELDS)


# The table users query: the facts with their owners spelled out.
FLOWS_VIEW = f"""
CREATE OR REPLACE VIEW flows AS
SELECT f.window_start, {_side("s", "src")}, {_side("d", "dst")},
       f.protocol,
       CASE f.action WHEN 1 THEN 'ACCEPT' WHEN 2 THEN 'REJECT' END AS action,
       CASE f.flow_direction WHEN 1 THEN 'ingress' WHEN 2 THEN 'egress' END AS flow_direction,
       f.traffic_path, f.bytes, f.packets, f.flows, f.port
FROM flow_facts f JOIN owners s ON s.id = f.src_owner JOIN owners d ON d.id = f.dst_owner"""

INGESTED_DDL = """
CREATE TABLE IF NOT EXISTS ingested (
  hash VARCHAR PRIMARY KEY,
  path VARCHAR NOT NULL,
  size BIGINT NOT NULL,
  records BIGINT NOT NULL,
  nodata BIGINT NOT NULL,
  skipdata BIGINT NOT NULL,
  malformed BIGINT NOT NULL,
  truncated BOOLEAN NOT NULL,
  rows BIGINT NOT NULL,
  seconds DOUBLE NOT NULL,
  ingested_at TIMESTAMP NOT NULL
)"""


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


@dataclass(frozen=True)
class DuckDBConfig:
    path: str = "dredge.duckdb"
    threads: int = 0  # 0 = DuckDB's default (all cores)
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
    name = "duckdb"

    def __init__(self, config: DuckDBConfig) -> None:
        config.validate()
        self.config = config
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._hashes: set[str] | None = None
        self._stages: dict[int, int] | None = None  # stage -> rows staged (replay, large files)

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
        if self.config.threads:
            con.execute(f"SET threads={int(self.config.threads)}")
        if self.config.memory_limit:
            con.execute("SET memory_limit=?", [self.config.memory_limit])
        for ddl in (OWNERS_DDL, FACTS_DDL, INGESTED_DDL):
            con.execute(ddl)
        meta.migrate(con)  # before the view: it reads columns an older store gains here
        con.execute(FLOWS_VIEW)
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
                if self._stages is not None:
                    with contextlib.suppress(duckdb.Error):
                        staging.drop_if_empty(self._con)
                    self._stages = None
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
        """Commit part of a large file's rows to the staging table (:mod:`duckdb_stage`),
        where no query sees them. ``stage``: the caller's number for the file, the same for
        all its parts; :meth:`store_files` moves them in with the file's record."""
        with self._lock:
            con = self.con
            if self._stages is None:
                staging.create(con)
                self._stages = {}
            self._stages.setdefault(stage, 0)
            try:
                con.begin()
                self._insert(con, rows, np.full(rows.num_rows, stage, np.int32), staging.STAGING)
                con.commit()
            except Exception as exc:
                _rollback(con)
                raise SinkError(f"DuckDB refused {rows.num_rows} staged rows: {exc}") from exc
            self._stages[stage] += rows.num_rows

    def drop_part(self, stage: int) -> None:
        """Forget a stage whose file will not be stored (it failed after some parts)."""
        with self._lock:
            if self._stages is not None and self._stages.pop(stage, None) is not None:
                staging.clear(self.con, [stage])

    def store_files(self, batch: list[tuple[Rows, IngestRecord]],
                    stages: Sequence[int | None] = ()) -> list[bool]:
        """Several files' rows and records in ONE transaction (a commit costs a sync to disk).

        ``stages``: per file, the stage of its rows committed before by :meth:`store_part`
        (None: all its rows are in the batch); they join the file's rows in this transaction,
        or are dropped if the file is not stored.

        Returns, per file, whether it was stored (False: already ingested). On failure nothing
        of the batch is stored and SinkError is raised.
        """
        t0 = time.perf_counter()
        stored: list[bool] = []
        stage_of = list(stages) or [None] * len(batch)
        staged = 0
        with self._lock:
            con = self.con
            try:
                con.begin()
                hashes = [rec.hash for _, rec in batch]
                marks = ", ".join("?" for _ in hashes)
                present = {r[0] for r in con.execute(
                    f"SELECT hash FROM ingested WHERE hash IN ({marks})", hashes).fetchall()} if hashes else set()
                known, next_id = meta.file_ids(con, hashes)
                tables, ids, records, new_ids = [], [], [], []
                replaced: set[str] = set()
                for (rows, rec), stage in zip(batch, stage_of, strict=True):
                    again = rec.hash in present
                    if again and not (rec.replace and rec.hash not in replaced):
                        stored.append(False)
                        continue
                    present.add(rec.hash)
                    stored.append(True)
                    values = [rec.path, rec.size, rec.records, rec.nodata, rec.skipdata,
                              rec.malformed, rec.truncated, rec.rows, rec.seconds]
                    if again:  # --force: the file's earlier rows go, in this transaction
                        fid = known.get(rec.hash)
                        if fid is None:
                            raise SinkError(f"{rec.path}: stored without a file id, its rows "
                                            "cannot be replaced")
                        con.execute("DELETE FROM flow_facts WHERE file_id = ?", [fid]).fetchall()
                        con.execute("UPDATE ingested SET path = ?, size = ?, records = ?, nodata = ?,"
                                    " skipdata = ?, malformed = ?, truncated = ?, rows = ?,"
                                    " seconds = ?, ingested_at = now()::TIMESTAMP WHERE hash = ?",
                                    [*values, rec.hash]).fetchall()
                        replaced.add(rec.hash)
                    else:
                        fid = next_id
                        next_id += 1
                        new_ids.append([rec.hash, fid])
                        records.append([rec.hash, *values])
                    if rows.num_rows:
                        tables.append(rows)
                        ids.append((fid, rows.num_rows))
                    if stage is not None and self._stages is not None:
                        staging.move(con, stage, fid)
                        staged += self._stages[stage]
                if tables:  # one insert for the whole batch: each statement has a fixed cost
                    self._insert(con, Rolled.concat([r if isinstance(r, Rolled) else Rolled.from_table(r)
                                                     for r in tables]),
                                 np.repeat([i for i, _ in ids], [n for _, n in ids]))
                if records:
                    con.executemany(
                        "INSERT INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", records)
                    con.executemany("INSERT INTO file_ids VALUES (?, ?)", new_ids)
                if self._stages is not None:
                    staging.clear(con, [s for s in stage_of if s is not None])
                con.commit()
                for s in stage_of:
                    if s is not None and self._stages is not None:
                        self._stages.pop(s, None)
                if self._hashes is not None:
                    self._hashes.update(h for h, ok in zip(hashes, stored, strict=True) if ok)
            except Exception as exc:  # whatever failed, the transaction must not stay open
                _rollback(con)
                n = sum(r.num_rows for r, _ in batch)
                rows_total.labels(self.name, "failed").inc(n)
                raise SinkError(f"DuckDB refused a batch of {len(batch)} file(s): {exc}") from exc
        n = sum(r.num_rows for (r, _), ok in zip(batch, stored, strict=True) if ok) + staged
        rows_total.labels(self.name, "stored").inc(n)
        flush_seconds.labels(self.name).observe(time.perf_counter() - t0)
        return stored

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
            con.execute(CHECKPOINTS_DDL)
            self._has_checkpoints = True

    def checkpoints(self, stream: str) -> dict[str, tuple[str, int]]:
        """shard id -> (sequence or SHARD_END, sub-sequence) stored for ``stream``."""
        with self._lock:
            self._ensure_checkpoints(self.con)
            found = self.con.execute(
                "SELECT shard_id, sequence, sub_sequence FROM checkpoints WHERE stream = ?",
                [stream]).fetchall()
        return {str(s): (str(q), int(n)) for s, q, n in found}

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, rows: Rows, file_ids: np.ndarray | None = None,
                table: str = "flow_facts") -> None:
        """Insert rolled-up rows inside the caller's transaction; ``file_ids``: each row's
        file (replay), else NULL (the stream's rows); ``table``: or the staging table.

        Owners go into the ``owners`` dictionary once (keyed by all eight fields); facts
        carry their ids. A ``flows``-schema table with strings is accepted too.
        """
        rolled = rows if isinstance(rows, Rolled) else Rolled.from_table(rows)
        if rolled.num_rows == 0:
            return
        owners = rolled.owners
        key = pc.binary_join_element_wise(
            *[owners.column(f).cast(pa.string()) for f in OWNER_FIELDS], "\x1f",
            null_handling="replace", null_replacement="\x00")
        batch_owners = owners.append_column("key", key).append_column(
            "lid", pa.array(np.arange(owners.num_rows, dtype=np.int32)))
        con.register("_dredge_owners", batch_owners)
        try:
            con.execute(f"""
                INSERT INTO owners
                SELECT (SELECT coalesce(max(id), -1) FROM owners) + row_number() OVER (ORDER BY b.lid),
                       b.key, {", ".join("b." + f for f in OWNER_FIELDS)}
                FROM _dredge_owners b ANTI JOIN owners o ON o.key = b.key""")
            mapping = con.execute(
                "SELECT b.lid, o.id FROM _dredge_owners b JOIN owners o ON o.key = b.key").fetchnumpy()
        finally:
            con.unregister("_dredge_owners")
        ids = np.empty(owners.num_rows, np.int32)
        ids[mapping["lid"]] = mapping["id"]
        facts = rolled.facts
        facts = facts.set_column(1, "src_owner", pa.array(ids[facts.column("src_owner").to_numpy()]))
        facts = facts.set_column(2, "dst_owner", pa.array(ids[facts.column("dst_owner").to_numpy()]))
        if file_ids is not None:
            facts = facts.append_column("file_id", pa.array(file_ids, pa.int32()))
        con.register("_dredge_facts", facts)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _dredge_facts")
        finally:
            con.unregister("_dredge_facts")

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            return self.con.sql(sql, params=params or None).to_arrow_table()


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.rollback()

