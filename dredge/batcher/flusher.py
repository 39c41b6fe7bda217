"""The stream daemon's flush: every shard's pending rows and new position go to the sink in
ONE transaction (``store_batch``); only after it returned are the positions checkpointed in
the lease table (``ShardOwner.commit_checkpoint``).

The batcher's interval flushes run in the background (:meth:`Flusher.flush_in_background`):
the rows are taken out, and batches processed meanwhile go into new pending rows; the next
flush waits for this one (:meth:`Flusher.landed`), so positions are stored in order.

Invariant: a shard's checkpoint (sink or lease) never passes data the sink has not stored. A
failed flush stores nothing and checkpoints nothing; its rows are pending again, before those
read since, and :meth:`Flusher.flush_until_stored` retries with backoff (the batcher takes no
batches meanwhile: readers block). A lease
checkpoint that fails is retried at the next flush; one whose lease is lost is forgotten.

With the Iceberg ledger (``[sink.iceberg]``), each flush also hands every shard's rows and the
position they reach to :class:`~dredge.sinks.iceberg.ledger.IcebergLedger`, which commits every
``commit_interval_s`` in the background (a commit never holds the 1 s local flushes). Lease
checkpoints then move only to positions the LEDGER committed: the table, not the local store,
is where every worker resumes. A ledger that cannot commit is retried with backoff; past its
``max_rows`` the flusher stops taking batches (back-pressure). Shards another worker committed
meanwhile are restarted from the table (``ShardOwner.restart``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Protocol

from dredge.aws import Backoff
from dredge.batcher.batches import Pending, ShardKey
from dredge.enrich.rollup import Rolled
from dredge.errors import CheckpointError, LeaseLost, SinkError, SinkUnavailable
from dredge.pipeline import PipelineConfig
from dredge.sinks.base import BatchSink, ShardCheckpoint
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.kinesis.shards import SEQUENCE, Position
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter

if TYPE_CHECKING:
    from dredge.sinks.iceberg.ledger import CommitResult, IcebergLedger

log = get_logger(__name__)

flushes_total = counter(
    "dredge_stream_flushes_total",
    "Flushes of the stream pipeline to the sink, by outcome (stored, failed).", ["outcome"])
lease_checkpoints_total = counter(
    "dredge_stream_lease_checkpoints_total",
    "Lease checkpoints after a flush, by outcome (ok, lost, failed: retried next flush).",
    ["outcome"])


class ShardOwner(Protocol):
    """The stream consumer that holds the shard's lease."""

    def is_current(self, shard_id: str, epoch: int) -> bool: ...
    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None: ...
    async def restart(self, shard_id: str, epoch: int, why: str) -> None: ...


class Flusher:
    """Holds what each shard accumulated since the last flush, and flushes it."""

    def __init__(self, sink: BatchSink, dead: DeadLetters, owners: Mapping[str, ShardOwner],
                 config: PipelineConfig, ledger: IcebergLedger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._ledger = ledger
        self._clock = clock
        self._commit: asyncio.Task[CommitResult] | None = None  # the ledger commit in flight
        self._next_commit = clock() + (ledger.config.commit_interval_s if ledger else 0.0)
        self._commit_backoff = Backoff(min(0.5, config.sink_retry_max_s), config.sink_retry_max_s)
        self._dead = dead
        self._owners = owners  # by stream name (the batcher registers them)
        self._config = config
        self._pending: dict[ShardKey, Pending] = {}
        # Stored in the sink, not yet in the lease table: (epoch, position).
        self._unconfirmed: dict[ShardKey, tuple[int, Position]] = {}
        self._backoff = Backoff(min(0.5, config.sink_retry_max_s), config.sink_retry_max_s)
        self._checkpointing: asyncio.Task[None] | None = None  # the lease writes in flight
        self._storing: asyncio.Task[bool] | None = None  # a flush in the background
        self._in_flight: dict[ShardKey, Pending] = {}  # what that flush stores
        self.flushes = 0

    def pending_for(self, key: ShardKey, epoch: int) -> Pending:
        """The shard's pending rows; a new lease epoch starts afresh."""
        pending = self._pending.get(key)
        if pending is None or pending.epoch != epoch:
            pending = self._pending[key] = Pending(epoch)
        return pending

    def discard(self, key: ShardKey) -> int:
        """The lease is gone: forget what the shard has not stored (its records, returned)."""
        dropped = self._pending.pop(key, None)
        self._in_flight.pop(key, None)  # if that flush fails, its rows are not taken back
        self._unconfirmed.pop(key, None)
        if self._ledger is not None:
            self._ledger.discard(key)
        return dropped.records if dropped is not None else 0

    async def flush_until_stored(self, draining: asyncio.Event) -> None:
        """Flush; on a sink failure wait (backoff) and retry; batches wait meanwhile."""
        while not await self.flush():
            delay = self._backoff.next_delay()
            log.warning("flush_retry_wait", seconds=round(delay, 2))
            try:
                await asyncio.wait_for(draining.wait(), delay)
            except TimeoutError:
                continue
            return  # shutting down: the final flush makes its own attempts
        self._backoff.reset()

    async def final_flush(self) -> None:
        for attempt in range(self._config.shutdown_flush_attempts):
            if await self.flush() and await self._final_commit():
                await self.checkpoints_landed()
                return
            await asyncio.sleep(min(2.0 ** attempt * 0.2, self._config.sink_retry_max_s))
        raise SinkUnavailable(f"final flush failed {self._config.shutdown_flush_attempts} times;"
                        " nothing after the last checkpoint was stored (it will be read again)")

    @property
    def storing(self) -> bool:
        """A background flush is still storing."""
        return self._storing is not None and not self._storing.done()

    def pending_rows(self, skip: Collection[ShardKey] = ()) -> int:
        """Rolled-up rows waiting, but ``skip``'s (an upper bound: batches are merged at the
        flush)."""
        return sum(e.rollup.groups for key, p in self._pending.items() if key not in skip
                   for e in p.all_enrichers())

    def has_pending(self, skip: Collection[ShardKey] = ()) -> bool:
        return any(key not in skip for key in self._pending)

    def flush_in_background(self, skip: Collection[ShardKey] = ()) -> None:
        """Start a flush and return: the batcher goes on with the next batches (into new
        pending rows) while the sink stores these. :meth:`landed` waits for it. Called on
        the loop; ``skip``: shards whose batch is being processed (their rows wait for the
        next flush), and no other shard's rows may be being added to."""
        if self._storing is not None:
            raise RuntimeError("a flush is already in flight: wait for landed() first")
        self._storing = asyncio.create_task(self._store(self._take_pending(skip)), name="flush")

    async def landed(self) -> bool:
        """Wait for the background flush, if any; False if it failed: its rows are pending
        again (before any read since), for the next flush."""
        task, self._storing = self._storing, None
        ok = True if task is None else await task
        self._take_back()
        return ok

    async def flush(self) -> bool:
        """Store pending rows + positions in one transaction, then checkpoint the leases (in
        the background: :meth:`checkpoints_landed` waits for them). A background flush in
        flight lands first.

        False when the sink failed (nothing stored, nothing checkpointed), or the ledger's
        buffer is full and its commit failed (back-pressure)."""
        await self.landed()
        ok = await self._store(self._take_pending())
        self._take_back()
        return ok

    def _take_pending(self, skip: Collection[ShardKey] = ()) -> dict[ShardKey, Pending]:
        # taken out: batches processed while the sink stores go into new pending rows
        pending = {key: p for key, p in self._pending.items() if key not in skip}
        self._pending = {key: p for key, p in self._pending.items() if key in skip}
        self._in_flight = dict(pending)
        return pending

    def _take_back(self) -> None:
        """After a failed flush, on the loop (no batch is being added meanwhile): its rows
        are pending again, before those read since (same tenure). A shard discarded
        meanwhile, or with a new lease epoch, is left out: it is read again."""
        failed, self._in_flight = self._in_flight, {}
        for key, old in failed.items():
            cur = self._pending.get(key)
            if cur is None:
                self._pending[key] = old
            elif cur.epoch == old.epoch:
                cur.absorb_earlier(old)

    async def _store(self, pending: dict[ShardKey, Pending]) -> bool:
        """Store ``pending``; on success ``_in_flight`` is emptied, on failure it keeps what
        :meth:`_take_back` puts back."""
        if self._ledger is not None and self._ledger.rows >= self._ledger.max_rows:
            await self._await_commit()
            if self._ledger.rows >= self._ledger.max_rows and not await self._commit_now():
                await self._checkpoint_leases()
                return False
        if pending:
            rows, checkpoints, by_shard = await asyncio.to_thread(_prepare, pending)
            try:
                await asyncio.to_thread(self._sink.store_batch, rows, checkpoints)
            except SinkError as exc:
                flushes_total.labels("failed").inc()
                log.error("flush_failed", error=str(exc)[:300], rows=sum(r.num_rows for r in rows),
                          shards=len(checkpoints))
                return False
            self._in_flight = {}
            flushes_total.labels("stored").inc()
            self.flushes += 1
            for key, p in pending.items():
                self._dead.write(p.dead)
                if p.position is None:
                    continue
                if self._ledger is not None:  # checkpointed once the ledger committed it
                    self._ledger.add(key, p.epoch, by_shard.get(key, []),
                                     (_sequence(p.position), p.position.sub_sequence))
                else:
                    self._unconfirmed[key] = (p.epoch, p.position)
        await self._maybe_commit()
        await self._checkpoint_leases()
        return True

    # -- the ledger's commits ------------------------------------------------------------

    async def _maybe_commit(self) -> None:
        """Collect a finished background commit; start one when due."""
        if self._ledger is None:
            return
        if self._commit is not None and self._commit.done():
            await self._await_commit()
        if self._commit is None and self._clock() >= self._next_commit and self._ledger.has_pending():
            self._commit = asyncio.create_task(asyncio.to_thread(self._ledger.commit),
                                               name="iceberg-commit")

    async def _await_commit(self) -> bool:
        """Wait for the commit in flight (if any) and act on its result; False if it failed."""
        task, self._commit = self._commit, None
        if task is None or self._ledger is None:
            return True
        try:
            result = await task
        except SinkError as exc:
            delay = self._commit_backoff.next_delay()
            self._next_commit = self._clock() + delay
            log.error("iceberg_commit_failed", error=str(exc)[:300], rows=self._ledger.rows,
                      retry_in_s=round(delay, 2))
            return False
        self._commit_backoff.reset()
        self._next_commit = self._clock() + self._ledger.config.commit_interval_s
        for (stream, shard), epoch in result.moved:
            owner = self._owners.get(stream)
            if owner is not None:
                await owner.restart(shard, epoch, "ledger_moved")
        return True

    async def _commit_now(self) -> bool:
        await self._await_commit()
        if self._ledger is None or not self._ledger.has_pending():
            return True
        self._commit = asyncio.create_task(asyncio.to_thread(self._ledger.commit), name="iceberg-commit")
        return await self._await_commit()

    async def _final_commit(self) -> bool:
        """At a graceful stop: everything stored locally goes to the ledger, then the leases."""
        if self._ledger is None:
            return True
        ok = await self._commit_now()
        await self._checkpoint_leases()
        await self.checkpoints_landed()
        return ok

    async def _checkpoint_leases(self) -> None:
        """Start writing every shard's stored position into its lease: all shards at once
        (each under its own lease lock), in the background, so that the batcher goes on with
        the next batches while the lease table answers (a slow or throttled table held the
        whole pipeline before). The round still in flight, if any, is waited for first:
        positions land in the order they were stored."""
        await self.checkpoints_landed()
        if self._ledger is not None:
            for key, epoch, (seq, sub) in self._ledger.take_committed():
                self._unconfirmed[key] = (epoch, Position.from_checkpoint(seq, sub))
        todo = list(self._unconfirmed.items())
        if todo:
            self._checkpointing = asyncio.create_task(self._write_leases(todo), name="lease-checkpoints")

    async def checkpoints_landed(self) -> None:
        """Wait for the lease writes in flight (each shard's outcome is already handled)."""
        task, self._checkpointing = self._checkpointing, None
        if task is not None:
            await task

    async def _write_leases(self, todo: list[tuple[ShardKey, tuple[int, Position]]]) -> None:
        await asyncio.gather(*(self._checkpoint_lease(key, epoch, position)
                               for key, (epoch, position) in todo))

    async def _checkpoint_lease(self, key: ShardKey, epoch: int, position: Position) -> None:
        stream, shard = key
        owner = self._owners[stream]
        try:
            await owner.commit_checkpoint(shard, epoch, position)
        except LeaseLost as exc:
            lease_checkpoints_total.labels("lost").inc()
            log.warning("lease_checkpoint_lost", stream=stream, shard_id=shard, error=str(exc))
            self._unconfirmed.pop(key, None)
            return
        except CheckpointError as exc:
            lease_checkpoints_total.labels("failed").inc()
            log.warning("lease_checkpoint_failed", stream=stream, shard_id=shard, error=str(exc)[:200])
            return
        lease_checkpoints_total.labels("ok").inc()
        if self._unconfirmed.get(key) == (epoch, position):
            del self._unconfirmed[key]


def _prepare(pending: dict[ShardKey, Pending]
             ) -> tuple[list[Rolled], list[ShardCheckpoint], dict[ShardKey, list[Rolled]]]:
    # Facts + owner dictionaries: what the DuckDB sink stores fastest (no strings per row).
    by_shard = {key: [r for r in (e.rolled() for e in p.all_enrichers()) if r.num_rows]
                for key, p in pending.items()}
    rows = [r for parts in by_shard.values() for r in parts]
    checkpoints = [
        ShardCheckpoint(stream, shard, _sequence(p.position), p.position.sub_sequence, p.records)
        for (stream, shard), p in pending.items() if p.position is not None
    ]
    return rows, checkpoints, by_shard


def _sequence(position: Position) -> str:
    if position.kind == SEQUENCE and position.sequence is not None:
        return position.sequence
    return position.kind
