"""The embedded store: DuckDB, the default sink.

Table ``flows`` holds rolled-up rows (see ``enrich.rollup.FLOWS_SCHEMA``); table
``ingested`` records each replayed file in the same transaction as its rows, so replaying
a file again adds nothing and a crash mid-replay loses nothing. ``window_start`` is UTC.

Table ``checkpoints`` holds, per (stream, shard), the position the stream daemon reached;
``store_batch`` commits rows and those positions in one transaction, so a daemon restarted
on the same file resumes exactly after what it stored.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dredge.errors import ConfigError, SinkError
from dredge.telemetry import metrics

FLOWS_DDL = """
CREATE TABLE IF NOT EXISTS flows (
  window_start TIMESTAMP NOT NULL,
  src_app VARCHAR, src_cluster VARCHAR, src_account VARCHAR, src_region VARCHAR,
  src_az VARCHAR, src_vpc VARCHAR, src_subnet VARCHAR, src_type VARCHAR,
  dst_app VARCHAR, dst_cluster VARCHAR, dst_account VARCHAR, dst_region VARCHAR,
  dst_az VARCHAR, dst_vpc VARCHAR, dst_subnet VARCHAR, dst_type VARCHAR,
  protocol SMALLINT, action VARCHAR, flow_direction VARCHAR, traffic_path TINYINT,
  bytes BIGINT NOT NULL, packets BIGINT NOT NULL, flows BIGINT NOT NULL
)"""

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
class ShardCheckpoint:
    """A shard's position after everything before it is stored; ``records``: Kinesis records
    stored since the previous checkpoint of this shard (added to the running total)."""

    stream: str
    shard_id: str
    sequence: str  # a sequence number, or SHARD_END
    sub_sequence: int = 0
    records: int = 0


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


@dataclass(frozen=True)
class IngestRecord:
    hash: str
    path: str
    size: int
    records: int
    nodata: int
    skipdata: int
    malformed: int
    truncated: bool
    rows: int
    seconds: float


class DuckDBSink:
    name = "duckdb"

    def __init__(self, config: DuckDBConfig) -> None:
        config.validate()
        self.config = config
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

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
        con.execute(FLOWS_DDL)
        con.execute(INGESTED_DDL)
        self._con = con

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
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
        with self._lock:
            row = self.con.execute("SELECT 1 FROM ingested WHERE hash = ?", [digest]).fetchone()
        return row is not None

    def store_file(self, rows: pa.Table, rec: IngestRecord) -> bool:
        """Rows and the file's record in one transaction. False if the file was already stored."""
        return self.store_files([(rows, rec)])[0]

    def store_files(self, batch: list[tuple[pa.Table, IngestRecord]]) -> list[bool]:
        """Several files' rows and records in ONE transaction (a commit costs a sync to disk).

        Returns, per file, whether it was stored (False: already ingested). On failure nothing
        of the batch is stored and SinkError is raised.
        """
        t0 = time.perf_counter()
        stored: list[bool] = []
        with self._lock:
            con = self.con
            try:
                con.begin()
                hashes = [rec.hash for _, rec in batch]
                marks = ", ".join("?" for _ in hashes)
                present = {r[0] for r in con.execute(
                    f"SELECT hash FROM ingested WHERE hash IN ({marks})", hashes).fetchall()} if hashes else set()
                tables = []
                records = []
                for rows, rec in batch:
                    if rec.hash in present:
                        stored.append(False)
                        continue
                    present.add(rec.hash)
                    stored.append(True)
                    if rows.num_rows:
                        tables.append(rows)
                    records.append([rec.hash, rec.path, rec.size, rec.records, rec.nodata, rec.skipdata,
                                    rec.malformed, rec.truncated, rec.rows, rec.seconds])
                if tables:
                    self._insert(con, pa.concat_tables(tables))
                if records:
                    con.executemany(
                        "INSERT INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", records)
                con.commit()
            except duckdb.Error as exc:
                _rollback(con)
                n = sum(r.num_rows for r, _ in batch)
                metrics.sink_rows_total.labels(self.name, "failed").inc(n)
                raise SinkError(f"DuckDB refused a batch of {len(batch)} file(s): {exc}") from exc
        n = sum(r.num_rows for (r, _), ok in zip(batch, stored, strict=True) if ok)
        metrics.sink_rows_total.labels(self.name, "stored").inc(n)
        metrics.sink_flush_seconds.labels(self.name).observe(time.perf_counter() - t0)
        return stored

    def store_batch(self, rows: pa.Table, checkpoints: list[ShardCheckpoint]) -> None:
        """Rows and shard positions in ONE transaction: both or neither (SinkError)."""
        t0 = time.perf_counter()
        with self._lock:
            con = self.con
            try:
                self._ensure_checkpoints(con)
                con.begin()
                self._insert(con, rows)
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
            except duckdb.Error as exc:
                _rollback(con)
                metrics.sink_rows_total.labels(self.name, "failed").inc(rows.num_rows)
                raise SinkError(f"DuckDB refused {rows.num_rows} rows and {len(checkpoints)}"
                                f" checkpoint(s): {exc}") from exc
        metrics.sink_rows_total.labels(self.name, "stored").inc(rows.num_rows)
        metrics.sink_flush_seconds.labels(self.name).observe(time.perf_counter() - t0)

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
    def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
        if rows.num_rows:
            con.register("_dredge_rows", rows)
            try:
                con.execute("INSERT INTO flows BY NAME SELECT * FROM _dredge_rows")
            finally:
                con.unregister("_dredge_rows")

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            return self.con.execute(sql, params or []).to_arrow_table()


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.rollback()
