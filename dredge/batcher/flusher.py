"""The stream daemon's flush: every shard's pending rows and new position go to the sink in
ONE transaction (``store_batch``); only after it returned are the positions checkpointed in
the lease table (``ShardOwner.commit_checkpoint``).

Invariant: a shard's checkpoint (sink or lease) never passes data the sink has not stored. A
failed flush stores nothing and checkpoints nothing; :meth:`Flusher.flush_until_stored`
retries with backoff (the batcher takes no batches meanwhile: readers block). A lease
checkpoint that fails is retried at the next flush; one whose lease is lost is forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from dredge.aws import Backoff
from dredge.batcher.batches import Pending, ShardKey
from dredge.enrich.rollup import Rolled
from dredge.errors import CheckpointError, LeaseLost, SinkError
from dredge.pipeline import PipelineConfig
from dredge.sinks.base import BatchSink, ShardCheckpoint
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.kinesis.shards import SEQUENCE, Position
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter

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


class Flusher:
    """Holds what each shard accumulated since the last flush, and flushes it."""

    def __init__(self, sink: BatchSink, dead: DeadLetters, owners: Mapping[str, ShardOwner],
                 config: PipelineConfig) -> None:
        self._sink = sink
        self._dead = dead
        self._owners = owners  # by stream name (the batcher registers them)
        self._config = config
        self._pending: dict[ShardKey, Pending] = {}
        # Stored in the sink, not yet in the lease table: (epoch, position).
        self._unconfirmed: dict[ShardKey, tuple[int, Position]] = {}
        self._backoff = Backoff(min(0.5, config.sink_retry_max_s), config.sink_retry_max_s)
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
        self._unconfirmed.pop(key, None)
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
            if await self.flush():
                return
            await asyncio.sleep(min(2.0 ** attempt * 0.2, self._config.sink_retry_max_s))
        raise SinkError(f"final flush failed {self._config.shutdown_flush_attempts} times;"
                        " nothing after the last checkpoint was stored (it will be read again)")

    async def flush(self) -> bool:
        """Store pending rows + positions in one transaction, then checkpoint the leases.

        False when the sink failed (nothing stored, nothing checkpointed)."""
        if self._pending:
            pending = dict(self._pending)
            rows, checkpoints = await asyncio.to_thread(_prepare, pending)
            try:
                await asyncio.to_thread(self._sink.store_batch, rows, checkpoints)
            except SinkError as exc:
                flushes_total.labels("failed").inc()
                log.error("flush_failed", error=str(exc)[:300], rows=sum(r.num_rows for r in rows),
                          shards=len(checkpoints))
                return False
            flushes_total.labels("stored").inc()
            self.flushes += 1
            for key, p in pending.items():
                if self._pending.get(key) is p:
                    del self._pending[key]
                self._dead.write(p.dead)
                if p.position is not None:
                    self._unconfirmed[key] = (p.epoch, p.position)
        await self._checkpoint_leases()
        return True

    async def _checkpoint_leases(self) -> None:
        for key, (epoch, position) in list(self._unconfirmed.items()):
            stream, shard = key
            owner = self._owners[stream]
            try:
                await owner.commit_checkpoint(shard, epoch, position)
            except LeaseLost as exc:
                lease_checkpoints_total.labels("lost").inc()
                log.warning("lease_checkpoint_lost", stream=stream, shard_id=shard, error=str(exc))
                self._unconfirmed.pop(key, None)
                continue
            except CheckpointError as exc:
                lease_checkpoints_total.labels("failed").inc()
                log.warning("lease_checkpoint_failed", stream=stream, shard_id=shard, error=str(exc)[:200])
                continue
            lease_checkpoints_total.labels("ok").inc()
            if self._unconfirmed.get(key) == (epoch, position):
                del self._unconfirmed[key]


def _prepare(pending: dict[ShardKey, Pending]) -> tuple[list[Rolled], list[ShardCheckpoint]]:
    # Facts + owner dictionaries: what the DuckDB sink stores fastest (no strings per row).
    rolled = [e.rolled() for p in pending.values() for e in p.enrichers.values()]
    rows = [r for r in rolled if r.num_rows]
    checkpoints = [
        ShardCheckpoint(stream, shard, _sequence(p.position), p.position.sub_sequence, p.records)
        for (stream, shard), p in pending.items() if p.position is not None
    ]
    return rows, checkpoints


def _sequence(position: Position) -> str:
    if position.kind == SEQUENCE and position.sequence is not None:
        return position.sequence
    return position.kind
