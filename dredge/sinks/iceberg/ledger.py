"""IcebergLedger: the daemon's exactly-once commits to the fleet-wide table.

The local DuckDB store keeps its 1 s flushes; after each, the flusher hands the ledger every
shard's rows WITH the position they reach (:meth:`IcebergLedger.add`). Every
``commit_interval_s`` (and at a graceful stop) :meth:`IcebergLedger.commit` appends the
buffered rows and, in the same atomic snapshot, the shards' new positions (the carried-forward
map of :mod:`dredge.sinks.iceberg.positions`). Rules:

- **Expected position.** A worker that starts a shard records the table's committed position
  for it (:meth:`expect`: the consumer resumed from it, or from a later lease checkpoint). Each
  commit first refreshes the table and compares: if a shard's committed position is not what
  this worker expects (another worker committed that shard: this one is a zombie or lost the
  lease) its buffered rows are DROPPED and counted (``dredge_iceberg_rows_dropped_total{reason=
  "moved"}``) and the shard is reported in :attr:`CommitResult.moved` (the consumer restarts
  it from the table if it still holds the lease).
- **Conflict.** The append is conditional on the snapshot it checked (pyiceberg's
  ``AssertRefSnapshotId``); pyiceberg's own blind retries are switched off for our commits
  (they would re-apply stale positions on a newer table). A ``CommitFailedException`` (another
  worker committed first) refreshes and checks again, up to ``MAX_CONFLICTS`` times.
- **Unknown outcome** (the catalog or S3 failed mid-commit): the summary carries a unique
  ``dredge.commit`` id; after a refresh, finding it means the commit landed.
- **Failure** (catalog or S3 down): :class:`SinkError`, nothing dropped, the buffer kept; the
  caller retries with backoff and stops taking batches past ``max_rows`` (back-pressure).
- A lost lease drops the shard's buffered rows (:meth:`discard`).

Lease checkpoints move only to positions the ledger committed (:meth:`take_committed`).
Thread-safety: ``commit`` runs in a worker thread and is the only user of ``self.table``;
``positions`` (the consumers) loads a table object of its own; ``add``/``discard``/``expect``
run on the loop and touch the buffers under a lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dredge.errors import SinkError, SinkUnavailable
from dredge.sinks.base import Rows
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.positions import (
    ShardKey,
    ShardPosition,
    carried_forward,
    committed_positions,
)
from dredge.sinks.iceberg.table import iceberg_errors, open_table, to_table_arrow
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter, gauge, histogram

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

log = get_logger(__name__)

COMMIT_PROPERTY = "dredge.commit"  # unique per commit attempt series: finds a commit that landed
WORKER_PROPERTY = "dredge.worker"
MAX_CONFLICTS = 8

commits_total = counter(
    "dredge_iceberg_commits_total",
    "Ledger commits by outcome (committed, conflict: retried on the new table, failed, empty).",
    ["outcome"])
commit_seconds = histogram("dredge_iceberg_commit_seconds", "Time of one ledger commit (all attempts).")
rows_committed_total = counter("dredge_iceberg_rows_committed_total", "Rows appended to the ledger table.")
rows_dropped_total = counter(
    "dredge_iceberg_rows_dropped_total",
    "Buffered ledger rows dropped, by reason (moved: another worker committed the shard; lost: lease lost).",
    ["reason"])
buffered_rows = gauge("dredge_iceberg_buffered_rows", "Rows waiting for the next ledger commit.")
commit_lag_seconds = gauge(
    "dredge_iceberg_commit_lag_seconds",
    "Age of the oldest stored-but-not-committed ledger rows (how far the committed positions trail).")


@dataclass
class _Shard:
    epoch: int
    position: ShardPosition
    parts: list[Rows] = field(default_factory=list)
    rows: int = 0
    since: float = 0.0


@dataclass
class CommitResult:
    committed: list[tuple[ShardKey, int, ShardPosition]] = field(default_factory=list)
    moved: list[tuple[ShardKey, int]] = field(default_factory=list)
    rows: int = 0
    snapshot_id: int | None = None


class IcebergLedger:
    def __init__(self, config: IcebergConfig, worker_id: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        config.validate()
        self.config = config
        self.worker_id = worker_id
        self.max_rows = config.max_buffered_rows
        self._clock = clock
        self._table: Table | None = None
        self._lock = threading.Lock()
        self._buffer: dict[ShardKey, _Shard] = {}
        self._expected: dict[ShardKey, tuple[int, ShardPosition | None]] = {}  # epoch, position
        self._committed: list[tuple[ShardKey, int, ShardPosition]] = []  # for the lease checkpoints
        self._inflight = 0  # rows of the commit running now

    # -- setup and what the consumer asks ---------------------------------------------------

    def open(self) -> None:
        if self._table is None:
            self._table = open_table(self.config)
            log.info("iceberg_ledger_opened", table=self.config.describe(), worker=self.worker_id)

    @property
    def table(self) -> Table:
        """The table, opened on first use (a catalog down at start is retried like a commit)."""
        if self._table is None:
            self.open()
        assert self._table is not None
        return self._table

    def positions(self, stream: str) -> dict[str, tuple[str, int]]:
        """shard id -> position the table committed for ``stream``, read now.

        A table object of its own: the commit thread's must not be refreshed under it (the
        commit checks positions on one snapshot and appends on that same snapshot)."""
        with iceberg_errors("cannot read the committed positions"):
            found = committed_positions(self.table.catalog.load_table(self.config.identifier))
        return {shard: pos for (s, shard), pos in found.items() if s == stream}

    def expect(self, key: ShardKey, epoch: int, position: ShardPosition | None) -> None:
        """This worker starts ``key`` (lease tenure ``epoch``) after the table's ``position``."""
        with self._lock:
            self._expected[key] = (epoch, position)
            old = self._buffer.pop(key, None)
        if old is not None and old.rows:
            rows_dropped_total.labels("lost").inc(old.rows)

    # -- what the flusher hands over ------------------------------------------------------

    def add(self, key: ShardKey, epoch: int, rows: Sequence[Rows], position: ShardPosition) -> None:
        """Rows a flush stored locally and the position they reach (after DuckDB stored them)."""
        n = sum(r.num_rows for r in rows)
        with self._lock:
            exp = self._expected.get(key)
            if exp is None or exp[0] != epoch:
                rows_dropped_total.labels("lost").inc(n)
                return  # not (or no longer) this tenure's shard
            shard = self._buffer.get(key)
            if shard is None or shard.epoch != epoch:
                shard = self._buffer[key] = _Shard(epoch, position, since=self._clock())
            shard.parts.extend(r for r in rows if r.num_rows)
            shard.rows += n
            shard.position = position
            self._gauges()

    def discard(self, key: ShardKey) -> int:
        """The lease is gone: drop the shard's buffered rows (returned, counted)."""
        with self._lock:
            self._expected.pop(key, None)
            dropped = self._buffer.pop(key, None)
            self._gauges()
        n = dropped.rows if dropped is not None else 0
        if n:
            rows_dropped_total.labels("lost").inc(n)
            log.info("iceberg_rows_dropped", stream=key[0], shard_id=key[1], rows=n,
                     reason="lease lost: the new owner reads them again from the table's position")
        return n

    @property
    def rows(self) -> int:
        """Rows buffered and in the commit running now (what back-pressure bounds)."""
        with self._lock:
            return sum(s.rows for s in self._buffer.values()) + self._inflight

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._buffer)

    def take_committed(self) -> list[tuple[ShardKey, int, ShardPosition]]:
        """Positions committed since the last call (the flusher checkpoints the leases to them)."""
        with self._lock:
            out, self._committed = self._committed, []
        return out

    def _gauges(self) -> None:
        buffered_rows.set(sum(s.rows for s in self._buffer.values()))
        oldest = min((s.since for s in self._buffer.values()), default=None)
        commit_lag_seconds.set(0.0 if oldest is None else self._clock() - oldest)

    # -- the commit (blocking: run it in a thread) ----------------------------------------

    def commit(self) -> CommitResult:
        """Append every buffered shard whose committed position is still the expected one, and
        its new position, in one snapshot. SinkError: nothing committed, the buffer kept.

        The buffer is swapped out first: rows the loop adds while the commit runs go to a new
        buffer (the next commit), never into what this one committed or reported."""
        t0 = time.perf_counter()
        with self._lock:
            batch, self._buffer = self._buffer, {}
            self._inflight = sum(s.rows for s in batch.values())
        result = CommitResult()
        if not batch:
            return result
        token = uuid.uuid4().hex
        try:
            for _ in range(MAX_CONFLICTS):
                if self._attempt(batch, token, result):
                    break
                commits_total.labels("conflict").inc()
                result = CommitResult(moved=result.moved)
            else:
                raise SinkUnavailable(
                    f"Iceberg: {MAX_CONFLICTS} commits in a row lost to other writers")
        except SinkError:
            commits_total.labels("failed").inc()
            with self._lock:
                self._restore(batch, {k for k, _ in result.moved})
            raise
        finally:
            self._inflight = 0
            commit_seconds.observe(time.perf_counter() - t0)
        with self._lock:
            for key, epoch in result.moved:  # fenced: this tenure writes nothing more
                if self._expected.get(key, (None,))[0] == epoch:
                    del self._expected[key]
                later = self._buffer.get(key)
                if later is not None and later.epoch == epoch:
                    del self._buffer[key]
                    rows_dropped_total.labels("moved").inc(later.rows)
            for key, epoch, pos in result.committed:
                if self._expected.get(key, (None,))[0] == epoch:
                    self._expected[key] = (epoch, pos)
            self._committed.extend(result.committed)
            self._gauges()
        commits_total.labels("committed" if result.snapshot_id is not None else "empty").inc()
        rows_committed_total.inc(result.rows)
        if result.snapshot_id is not None:
            log.info("iceberg_committed", rows=result.rows, shards=len(result.committed),
                     snapshot_id=result.snapshot_id, seconds=round(time.perf_counter() - t0, 3))
        return result

    def _restore(self, batch: dict[ShardKey, _Shard], moved: set[ShardKey]) -> None:
        """A failed commit: its shards go back in front of what was added meanwhile."""
        for key, old in batch.items():
            exp = self._expected.get(key)
            if key in moved or exp is None or exp[0] != old.epoch:
                continue  # fenced or discarded meanwhile
            cur = self._buffer.get(key)
            if cur is not None and cur.epoch == old.epoch:
                old.parts.extend(cur.parts)
                old.rows += cur.rows
                old.position = cur.position
            self._buffer[key] = old
        self._gauges()

    def _attempt(self, batch: dict[ShardKey, _Shard], token: str, result: CommitResult) -> bool:
        """One try on the refreshed table; False when another writer committed first."""
        from pyiceberg.exceptions import CommitFailedException

        table = self.table
        with iceberg_errors("cannot refresh the table"):
            table.refresh()
        if _landed(table, token):
            return True  # an earlier attempt whose answer was lost did commit
        committed = committed_positions(table)
        keep: dict[ShardKey, _Shard] = {}
        with self._lock:
            expected = dict(self._expected)
        for key, shard in batch.items():
            exp = expected.get(key)
            if exp is None or exp[0] != shard.epoch:
                continue  # discarded meanwhile (lease lost): nothing to commit
            if committed.get(key) != exp[1]:
                if (key, shard.epoch) not in result.moved:
                    result.moved.append((key, shard.epoch))
                    rows_dropped_total.labels("moved").inc(shard.rows)
                    log.warning("iceberg_shard_moved", stream=key[0], shard_id=key[1],
                                expected=str(exp[1]), committed=str(committed.get(key)),
                                dropped_rows=shard.rows)
                continue
            keep[key] = shard
        if not keep:
            return True
        arrow = combine(_concat([to_table_arrow(p) for s in keep.values() for p in s.parts]))
        summary = carried_forward(table, {k: s.position for k, s in keep.items()})
        summary.update({COMMIT_PROPERTY: token, WORKER_PROPERTY: self.worker_id})
        _no_blind_retries(table)
        try:
            with iceberg_errors("commit failed"):
                try:
                    tx = table.transaction()
                    tx.append(arrow, snapshot_properties=summary)
                    tx.commit_transaction()
                except CommitFailedException:
                    return False
        except SinkError:
            with iceberg_errors("cannot refresh the table after a failed commit"):
                table.refresh()
            if not _landed(table, token):
                raise
        result.committed = [(k, s.epoch, s.position) for k, s in keep.items()]
        result.rows = arrow.num_rows
        snap = table.current_snapshot()
        result.snapshot_id = snap.snapshot_id if snap is not None else None
        return True

    def close(self) -> None:
        self._table = None


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    from dredge.sinks.iceberg.table import ARROW_SCHEMA

    return pa.concat_tables(tables) if tables else ARROW_SCHEMA.empty_table()


_SAFE_SUM = float(2**62)  # below int64's end with room for float rounding


def combine(arrow: pa.Table) -> pa.Table:
    """Rows with the same dimensions summed into one (columnar: pyarrow's hash aggregate).

    Each local flush (1 s) rolls up only its own records, so a shard's minute arrives in up to
    ``window_s / flush_interval_s`` partial rows of the same key; a commit (60 s) holds them all.
    Summing them first makes the commit and the table up to that many times smaller, with the
    same totals. Left as is when a sum could pass int64 (the rows then stay apart, exact)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from dredge.enrich.rollup import METRICS  # loaded already by the daemon's rollup
    from dredge.sinks.iceberg.table import ARROW_SCHEMA

    if arrow.num_rows < 2:
        return arrow
    for m in METRICS:
        total = pc.sum(pc.cast(arrow.column(m), pa.float64(), safe=False)).as_py() or 0.0
        if total >= _SAFE_SUM:
            return arrow
    keys = [n for n in ARROW_SCHEMA.names if n not in METRICS]
    grouped = arrow.group_by(keys, use_threads=False).aggregate([(m, "sum") for m in METRICS])
    grouped = grouped.rename_columns([n.removesuffix("_sum") for n in grouped.column_names])
    return grouped.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)


def _landed(table: Any, token: str, depth: int = 50) -> bool:
    """Is a snapshot with this commit id among the newest ``depth`` of the main branch?"""
    snap = table.current_snapshot()
    for _ in range(depth):
        if snap is None:
            return False
        if snap.summary is not None and snap.summary.additional_properties.get(COMMIT_PROPERTY) == token:
            return True
        parent = snap.parent_snapshot_id
        snap = table.snapshot_by_id(parent) if parent is not None else None
    return False


def _no_blind_retries(table: Any) -> None:
    """pyiceberg retries a conflicting commit on the new table with the summary it computed
    on the old one (stale positions): switch that off for this table object (in memory only;
    other engines keep the table's own setting)."""
    from pyiceberg.table import TableProperties

    props = table.metadata.properties
    if props.get(TableProperties.COMMIT_NUM_RETRIES) != "0":
        table.metadata = table.metadata.model_copy(
            update={"properties": {**props, TableProperties.COMMIT_NUM_RETRIES: "0"}})
