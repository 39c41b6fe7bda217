"""Backfill Druid from the DuckDB store with SQL-based ingestion (``dredge replay --sink druid``).

The DuckDB store stays the ledger of ingested files. Each file batch marks the hours it touches
in table ``druid_pending`` (before the batch commits: a superset is harmless); afterwards every
pending hour is rebuilt from the store with ``REPLACE INTO dredge_flows OVERWRITE WHERE __time``
over that hour, and unmarked once Druid reports the task done and its segments loaded. An
hour in Druid is then a function of the store: replaying the same files again, pushing an hour
twice, or resuming after a failure never counts anything twice.

Druid unreachable or a task failing: retried a bounded number of times with jittered backoff,
then :class:`SinkError`; the hours stay pending for the next run. How the rows reach Druid
(inline, local files, S3 objects): :mod:`dredge.sinks.druid_staging`. Why REPLACE and not the
stream for history: docs/druid.md (measured).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dredge.aws import Backoff
from dredge.enrich.rollup import DIMENSIONS, METRICS, Rolled
from dredge.errors import SinkError
from dredge.sinks.base import IngestRecord, Rows
from dredge.sinks.druid import LONG_DIMENSIONS, DruidAPI, DruidConfig, DruidUnreachable
from dredge.sinks.druid_staging import Part, Staging
from dredge.sinks.duckdb import DuckDBSink
from dredge.sinks.metrics import flush_seconds, pending_intervals, retries_total, rows_total
from dredge.sinks.rowcodec import encode
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

HOUR = 3600

PENDING_DDL = """
CREATE TABLE IF NOT EXISTS druid_pending (
  datasource VARCHAR NOT NULL,
  hour TIMESTAMP NOT NULL,
  marked_at TIMESTAMP NOT NULL,
  PRIMARY KEY (datasource, hour)
)"""


def _ts(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def replace_statement(datasource: str, start: int, end: int, source: dict[str, Any],
                      extra: Sequence[tuple[str, str]] = (), empty: bool = False) -> str:
    """``REPLACE ... OVERWRITE WHERE`` the hours [start, end) with the JSON lines of ``source``
    (a Druid input source: inline data, local files or S3 objects). ``extra``: more string
    dimensions as (name, SQL expression over the input's columns), e.g. the reconcile's marker.
    ``empty``: with no rows at all (Druid leaves tombstones: the hours are cleared)."""
    dims = [d for d in DIMENSIONS if d != "window_start"]
    extend = ", ".join([f'"{d}" {"BIGINT" if d in LONG_DIMENSIONS else "VARCHAR"}' for d in dims]
                       + [f'"{m}" BIGINT' for m in METRICS])
    return (
        f'REPLACE INTO "{datasource}"\n'
        f"OVERWRITE WHERE \"__time\" >= TIMESTAMP '{_ts(start)}' AND \"__time\" < TIMESTAMP '{_ts(end)}'\n"
        "SELECT TIME_FLOOR(TIME_PARSE(\"window_start\"), 'PT1M') AS \"__time\", "
        + ", ".join(f'"{d}"' for d in dims) + ", "
        + "".join(f'{expr} AS "{name}", ' for name, expr in extra)
        + ", ".join(f'SUM("{m}") AS "{m}"' for m in METRICS) + "\n"
        f"FROM TABLE(EXTERN({_sql_string(json.dumps(source))}, '{{\"type\": \"json\"}}'))\n"
        f'  EXTEND ("window_start" VARCHAR, {extend})\n'
        + ("WHERE 1 = 0\n" if empty else "")
        + f"GROUP BY {', '.join(str(i + 1) for i in range(len(dims) + len(extra) + 1))}\n"
        "PARTITIONED BY HOUR"
    )


@dataclass
class PushSummary:
    hours: int = 0  # hours brought up to date
    statements: int = 0  # REPLACE tasks that succeeded
    rows: int = 0  # rows sent (before Druid's rollup to minutes)
    bytes: int = 0  # JSON sent (inline or staged; before gzip for S3)
    attempts: int = 0  # REPLACE tasks submitted (failures included)
    pending: int = 0  # hours still pending (after a failure)
    seconds: float = 0.0
    task_seconds: list[float] = field(default_factory=list)  # submit -> segments loaded

    def as_dict(self) -> dict[str, Any]:
        return {"hours": self.hours, "statements": self.statements, "rows": self.rows,
                "bytes": self.bytes, "attempts": self.attempts, "pending": self.pending,
                "seconds": round(self.seconds, 3)}


class HourReplacer:
    """Rebuilds hours in Druid with ``REPLACE`` from a source of rows: runs of consecutive
    hours per statement, staged once, retried with backoff, done when the segments are loaded.

    A subclass gives each hour's rows (:meth:`_hour_lines`), hears which hours are done
    (:meth:`_done`) and may add dimensions to the statement (:meth:`_extra`). Used by the
    backfill from the DuckDB store (below) and the reconcile from the Iceberg ledger
    (:mod:`dredge.sinks.druid_reconcile`).
    """

    name = "druid"

    def __init__(self, config: DruidConfig, api: DruidAPI | None, staging_path: str, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        config.validate()
        self.config = config
        self.api = api or DruidAPI(config)
        self._sleep = sleep
        self.staging = config.resolved_staging(staging_path)
        self._stager = Staging(self.staging, config.datasource,
                               s3_endpoint_url=config.s3_endpoint_url, s3_region=config.s3_region,
                               timeout_s=config.timeout_s)

    def _hour_lines(self, hour: int) -> tuple[bytes, int]:
        """The hour's rows as JSON lines (:func:`dredge.sinks.rowcodec.encode`) and their count."""
        raise NotImplementedError

    def _done(self, start: int, end: int) -> None:
        """The hours [start, end) are rebuilt (or had no rows to rebuild)."""

    def _keep_empty(self, hour: int) -> bool:
        """An hour with no rows that must still be replaced (cleared) in Druid."""
        return False

    def _extra(self, start: int, end: int) -> Sequence[tuple[str, str]]:
        return ()

    def _statements(self, hours: list[int]) -> Iterator[tuple[int, int, list[Part], int]]:
        """Runs of consecutive pending hours as (start, end, each hour's JSON lines, rows): at most
        ``max_statement_hours``, and inline at most ``max_inline_bytes`` (whole hours)."""
        inline = self.staging == "inline"
        start = end = 0
        parts: list[Part] = []
        size = rows = 0
        for hour in hours:
            data, n = self._hour_lines(hour)
            if not n and not self._keep_empty(hour):
                # marked, but its batch never committed: nothing to rebuild
                self._done(hour, hour + HOUR)
                continue
            if inline and len(data) > self.config.max_inline_bytes:
                raise SinkError(
                    f"hour {_ts(hour)} has {len(data) / 1e6:.1f} MB of rows, more than inline "
                    f"staging takes ({self.config.max_inline_bytes / 1e6:.1f} MB): use "
                    "--druid-staging local:/dir (a folder the Druid indexers can read) or "
                    "s3://bucket/prefix/ (Druid with druid-s3-extensions); the hours stay pending")
            if parts and (hour != end or (end - start) // HOUR >= self.config.max_statement_hours
                          or (inline and size + len(data) > self.config.max_inline_bytes)):
                yield start, end, parts, rows
                parts, size, rows = [], 0, 0
            if not parts:
                start = hour
            parts.append((hour, data))
            size += len(data)
            rows += n
            end = hour + HOUR
        if parts:
            yield start, end, parts, rows

    def _replace(self, start: int, end: int, parts: list[Part], rows: int,
                 summary: PushSummary) -> None:
        context = {"maxNumTasks": self.config.max_num_tasks, "finalizeAggregations": False,
                   "groupByEnableMultiValueUnnesting": False, "waitUntilSegmentsLoad": True,
                   "sqlTimeZone": "Etc/UTC"}
        size = sum(len(d) for _, d in parts)
        backoff = Backoff(self.config.backoff_base_s, self.config.backoff_max_s)
        error = ""
        # staged once, for every attempt; removed when the statement ends (druid_staging)
        # hours a --force emptied have no lines; only such hours: one line no row passes
        staged = [p for p in parts if p[1]] or [(start, b"{}\n")]
        with self._stager.staged(start, staged) as source:
            sql = replace_statement(self.config.datasource, start, end, source,
                                    self._extra(start, end), empty=not rows)
            for attempt in range(self.config.max_attempts):
                if attempt:
                    delay = backoff.next_delay()
                    retries_total.labels(self.name, "call").inc()
                    log.warning("druid_replace_retry", datasource=self.config.datasource,
                                start=_ts(start), end=_ts(end), attempt=attempt + 1,
                                wait_s=round(delay, 2), error=error[:300])
                    self._sleep(delay)
                t0 = time.perf_counter()
                summary.attempts += 1
                try:
                    task = self.api.submit_sql_task(sql, context)
                    state, error = self._wait_task(task)
                except DruidUnreachable as exc:
                    error = str(exc)
                    continue
                if state == "SUCCESS":
                    if rows:
                        self._wait_visible(start, end, [h for h, d in parts if d])
                    seconds = time.perf_counter() - t0
                    self._done(start, end)
                    summary.statements += 1
                    summary.rows += rows
                    summary.bytes += size
                    summary.task_seconds.append(seconds)
                    rows_total.labels(self.name, "stored").inc(rows)
                    flush_seconds.labels(self.name).observe(seconds)
                    log.info("druid_replace_done", datasource=self.config.datasource, task=task,
                             start=_ts(start), end=_ts(end), rows=rows, bytes=size,
                             seconds=round(seconds, 2))
                    return
                error = f"task {task} {state}: {error}"
        rows_total.labels(self.name, "failed").inc(rows)
        raise SinkError(f"Druid REPLACE of {_ts(start)}..{_ts(end)} into {self.config.datasource!r}"
                        f" failed {self.config.max_attempts} times; the hours stay pending (run"
                        f" again to push them): {error[:500]}")

    def _wait_visible(self, start: int, end: int, hours: list[int]) -> None:
        """Wait until the Broker's SQL shows what the statement wrote (:meth:`_visible`). The
        task ends when the segments are loaded on the Historicals, but the Broker learns a
        datasource's columns from them a moment later: a datasource whose only segments were
        just replaced is "not found" in between, and a column new to it is unknown (two CI
        runs failed on these). Bounded; a Broker still behind then is logged, not an error
        (the rows are stored)."""
        deadline = time.monotonic() + min(self.config.task_timeout_s, 120.0)
        while True:
            try:
                why = self._visible(start, end, hours)
            except SinkError as exc:  # DruidUnreachable too
                why = str(exc)
            if not why:
                return
            if time.monotonic() >= deadline:
                log.warning("druid_replace_not_visible", datasource=self.config.datasource,
                            start=_ts(start), end=_ts(end), error=why[:300])
                return
            self._sleep(0.5)

    def _visible(self, start: int, end: int, hours: list[int]) -> str:
        """Why the rebuilt ``hours`` (those with rows) are not yet seen; "" once they are."""
        ds = self.config.datasource.replace('"', '""')
        rows = self.api.sql(f'SELECT COUNT(*) AS n FROM "{ds}" WHERE __time >= TIMESTAMP'
                            f" '{_ts(start)}' AND __time < TIMESTAMP '{_ts(end)}'")
        return "" if rows and int(rows[0].get("n") or 0) > 0 else "no rows yet"

    def _wait_task(self, task: str) -> tuple[str, str]:
        """Poll a task until it ends; (SUCCESS|FAILED, error). Druid going away mid-wait is
        tolerated for a bounded number of polls, then DruidUnreachable."""
        deadline = time.monotonic() + self.config.task_timeout_s
        misses = 0
        while time.monotonic() < deadline:
            try:
                status = self.api.task_status(task)
                misses = 0
            except DruidUnreachable:
                misses += 1
                if misses >= self.config.max_attempts:
                    raise
                self._sleep(min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** misses))
                continue
            state = str(status.get("statusCode") or status.get("status") or "")
            if state in ("SUCCESS", "FAILED"):
                return state, str(status.get("errorMsg") or "")
            self._sleep(1.0)
        return "TIMEOUT", f"not done after {self.config.task_timeout_s:.0f}s"


class DruidBackfill(HourReplacer):
    """The replay sink for ``--sink druid``: DuckDB stores (and is the ledger), Druid follows.

    ``is_ingested``/``store_files`` are replay's ``FileSink``; :meth:`push` then rebuilds every
    pending hour in Druid from the store.
    """

    def __init__(self, store: DuckDBSink, config: DruidConfig, api: DruidAPI | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, api, store.config.path, sleep=sleep)
        self.store = store
        self._cursor: duckdb.DuckDBPyConnection | None = None
        # hours whose rows a `replay --force` deleted: pushed even when the store has none left
        self._emptied: set[int] = set()

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        """Its own connection to the store's database (replay's workers use the store's)."""
        if self._cursor is None:
            cursor = self.store.con.cursor()
            cursor.execute("SET TimeZone='UTC'")
            cursor.execute(PENDING_DDL)
            self._cursor = cursor
        return self._cursor

    def close(self) -> None:
        if self._cursor is not None:
            with contextlib.suppress(duckdb.Error):
                self._cursor.close()
            self._cursor = None

    # -- replay's FileSink ------------------------------------------------------------------

    def is_ingested(self, digest: str) -> bool:
        return self.store.is_ingested(digest)

    def store_files(self, batch: list[tuple[Rows, IngestRecord]]) -> list[bool]:
        hours: set[int] = set()
        for rows, rec in batch:
            ws = (rows.facts if isinstance(rows, Rolled) else rows).column("window_start")
            secs = ws.cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
            hours.update((np.unique(secs // HOUR) * HOUR).tolist())
            if rec.replace:  # --force: the hours of the rows it replaces are rebuilt too
                old = self.store.file_buckets(rec.hash, HOUR)
                hours.update(old)
                self._emptied.update(old)
        self._mark(sorted(hours))  # before the rows commit: a superset is harmless
        return self.store.store_files(batch)

    # -- pending hours ----------------------------------------------------------------------

    def _mark(self, hours: list[int]) -> None:
        if hours:
            self._con.executemany(
                "INSERT INTO druid_pending VALUES (?, to_timestamp(?)::TIMESTAMP, now()::TIMESTAMP)"
                " ON CONFLICT DO NOTHING", [[self.config.datasource, h] for h in hours])

    def mark_stored(self, start: int | None = None, end: int | None = None) -> int:
        """Mark every hour the store has rows for in [start, end) (all when None); count them."""
        clauses, params = [], []
        if start is not None:
            clauses.append("window_start >= to_timestamp(?)::TIMESTAMP")
            params.append(start)
        if end is not None:
            clauses.append("window_start < to_timestamp(?)::TIMESTAMP")
            params.append(end)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        found = self._con.execute(
            f"SELECT DISTINCT epoch(date_trunc('hour', window_start))::BIGINT FROM flows{where}",
            params).fetchall()
        self._mark(sorted(int(r[0]) for r in found))
        return len(found)

    def pending(self) -> list[int]:
        found = self._con.execute(
            "SELECT epoch(hour)::BIGINT FROM druid_pending WHERE datasource = ? ORDER BY hour",
            [self.config.datasource]).fetchall()
        return [int(r[0]) for r in found]

    def _done(self, start: int, end: int) -> None:
        self._unmark(start, end)
        self._emptied.difference_update(range(start, end, HOUR))

    def _keep_empty(self, hour: int) -> bool:
        return hour in self._emptied

    def _unmark(self, start: int, end: int) -> None:
        self._con.execute(
            "DELETE FROM druid_pending WHERE datasource = ? AND hour >= to_timestamp(?)::TIMESTAMP"
            " AND hour < to_timestamp(?)::TIMESTAMP", [self.config.datasource, start, end])

    def _hour_lines(self, hour: int) -> tuple[bytes, int]:
        table: pa.Table = self._con.sql(
            "SELECT * FROM flows WHERE window_start >= to_timestamp(?)::TIMESTAMP"
            " AND window_start < to_timestamp(?)::TIMESTAMP", params=[hour, hour + HOUR]
        ).to_arrow_table()
        if table.num_rows == 0:
            return b"", 0
        data, _ = encode(Rolled.from_table(table))
        return b"\n".join(data) + b"\n", table.num_rows

    # -- pushing ----------------------------------------------------------------------------

    def push(self, progress: Callable[[PushSummary], None] | None = None) -> PushSummary:
        """Rebuild every pending hour in Druid; SinkError (hours stay pending) if Druid fails."""
        t0 = time.perf_counter()
        summary = PushSummary()
        hours = self.pending()
        try:
            for start, end, parts, rows in self._statements(hours):
                self._replace(start, end, parts, rows, summary)
                summary.hours += (end - start) // HOUR
                if progress is not None:
                    progress(summary)
        finally:
            summary.pending = len(self.pending())
            summary.seconds = time.perf_counter() - t0
            pending_intervals.labels(self.name).set(summary.pending)
        return summary
