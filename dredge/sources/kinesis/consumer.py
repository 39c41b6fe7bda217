"""One stream, consumed by this worker: shard discovery, the lease loop, one reader per shard.

The lease loop renews held leases every ``renew_interval_s`` and runs the taker every
``take_interval_s`` (``LeaseCoordinator``); it starts a ``ShardReader`` for each held shard whose
parents are finished (SHARD_END checkpointed, ``LeaseCoordinator.is_ready``) and stops the
reader of a lease it lost (the batcher drops that shard's unstored rows). A reader that
crashes is restarted, with backoff, after the last record it handed over.

Start position of a shard = the later of the lease checkpoint and this worker's own sink
checkpoint (``checkpoints`` table). The sink's is later only when this worker stored data
and died before checkpointing the lease: resuming there makes a restarted single worker
exactly-once; the lease is then brought forward to it.

With a fleet-wide ledger (``ledger``: the Iceberg table, ``[sink.iceberg]``) the start is the
later of the lease checkpoint and the LEDGER's committed position instead (lease checkpoints
never pass it), and the ledger is told which committed position this tenure expects
(``expect``): a commit finding the table moved past it drops the shard's rows. The local
store's own position does not move the start then; records it already holds are stored in it
again (the local store is at least once after a crash with a ledger; the ledger is exact).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

from dredge.aws import Backoff
from dredge.errors import CheckpointError, LeaseLost, SinkError, SourceError
from dredge.sources.kinesis.clients import dynamodb_client, kinesis_client
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig
from dredge.sources.kinesis.discovery import ShardCatalog, list_shards
from dredge.sources.kinesis.leases import Lease, LeaseCoordinator
from dredge.sources.kinesis.metrics import reader_events_total
from dredge.sources.kinesis.reader import ReadBatch, ShardReader
from dredge.sources.kinesis.shards import AT_TIMESTAMP, SHARD_END, Position, furthest
from dredge.telemetry.logging import get_logger

__all__ = ["ConsumerSettings", "Ledger", "StoredCheckpoints", "StreamConsumer"]

log = get_logger(__name__)

StoredCheckpoints = Callable[[str], Awaitable[dict[str, tuple[str, int]]]]


class Ledger(Protocol):
    """The fleet-wide ledger every worker resumes from (dredge.sinks.iceberg.ledger)."""

    def positions(self, stream: str) -> dict[str, tuple[str, int]]: ...  # blocking I/O
    def expect(self, key: tuple[str, str], epoch: int, position: tuple[str, int] | None) -> None: ...


class ConsumerSettings(Protocol):
    """The sections a consumer reads (``DredgeConfig`` has them)."""

    @property
    def kinesis(self) -> KinesisConfig: ...
    @property
    def lease(self) -> LeaseConfig: ...


@dataclass(eq=False)
class StreamConsumer:
    stream: StreamConfig
    config: ConsumerSettings
    worker_id: str
    deliver: Callable[[ReadBatch], Awaitable[None]]
    discard: Callable[[str, str], None]
    stored_checkpoints: StoredCheckpoints
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic
    ledger: Ledger | None = None

    def __post_init__(self) -> None:
        self.name = self.stream.name
        self._catalog = ShardCatalog()
        self._kinesis: Any = None
        self._leases: LeaseCoordinator | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._epochs: dict[str, int] = {}
        self._finished: set[str] = set()
        self._not_ready_logged: set[str] = set()
        self._epoch_counter = itertools.count(1)
        self._stopping = False
        self._released = asyncio.Event()
        self._wake = asyncio.Event()
        self._relist = asyncio.Event()
        # Finished shards' leases: cleaned at the first discovery, then every cleanup_interval_s.
        self._cleaned_at = float("-inf")

    @property
    def leases(self) -> LeaseCoordinator:
        if self._leases is None:
            raise SourceError(f"stream {self.name}: consumer not started")
        return self._leases

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        """Clients, the lease table, a first listing of shards (a missing stream fails here)."""
        cfg = self.config
        self._kinesis = await stack.enter_async_context(kinesis_client(self.stream, cfg.kinesis))
        ddb = await stack.enter_async_context(dynamodb_client(cfg.lease, cfg.kinesis))
        table = self.stream.table_name(cfg.lease.table)
        self._leases = LeaseCoordinator(ddb, cfg.lease, self.worker_id, table=table,
                                        initial_position=self.stream.start_position,
                                        clock=self.clock)
        await self._leases.ensure_table()
        await self._discover()
        log.info("stream_opened", stream=self.name, shards=len(self._catalog), lease_table=table,
                 worker=self.worker_id)

    async def _discover(self) -> None:
        shards = await list_shards(self._kinesis, self.name)
        self._catalog.update(shards)
        await self.leases.sync_shards([s.info for s in shards])
        every = self.config.lease.cleanup_interval_s
        now = time.monotonic()
        if every and now - self._cleaned_at >= every:
            await self.leases.clean_finished(s.shard_id for s in shards)
            self._cleaned_at = now

    # -- what the batcher asks -----------------------------------------------------------

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return self._epochs.get(shard_id) == epoch

    def reading(self) -> list[str]:
        """The shards this worker reads now (a reader was started for each)."""
        return list(self._epochs)

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        """Checkpoint the lease after the sink stored everything up to ``position``."""
        if self._epochs.get(shard_id) != epoch:
            raise LeaseLost(f"{self.name}/{shard_id}: lease given up since the data was read")
        try:
            await self.leases.checkpoint(shard_id, position.checkpoint, position.sub_sequence)
        except LeaseLost:
            await self._stop_reader(shard_id, "lost")
            raise
        if position.kind == SHARD_END:
            self._finished.add(shard_id)
            log.info("shard_finished", stream=self.name, shard_id=shard_id)
            self._wake.set()
            self._relist.set()

    # -- loops ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The lease and discovery loops, until ``release``."""
        discovery = asyncio.create_task(self._discovery_loop(), name=f"discovery-{self.name}")
        try:
            await self._lease_loop()
        finally:
            discovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await discovery
            await self._stop_all_readers()

    async def _discovery_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relist.wait(), self.config.kinesis.list_shards_interval_s)
            self._relist.clear()
            if self._stopping:
                return
            try:
                await self._discover()
            except (SourceError, CheckpointError) as exc:
                log.warning("shard_discovery_failed", stream=self.name, error=str(exc)[:300])
            self._wake.set()

    async def _lease_loop(self) -> None:
        cfg = self.config.lease
        next_take = self.clock()
        while not self._released.is_set():
            held = await self.leases.renew()
            for shard_id in [s for s in self._readers if s not in held]:
                await self._stop_reader(shard_id, "lost")
            if not self._stopping:
                if self.clock() >= next_take:
                    try:
                        await self.leases.take()
                    except CheckpointError as exc:
                        log.warning("lease_take_failed", stream=self.name, error=str(exc)[:300])
                    next_take = self.clock() + cfg.take_interval_s
                try:
                    await self._start_ready(self.leases.held())
                except CheckpointError as exc:
                    log.warning("lease_scan_failed", stream=self.name, error=str(exc)[:300])
            wait = min(cfg.renew_interval_s, max(0.0, next_take - self.clock()) or cfg.renew_interval_s)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._any(self._wake, self._released), wait)

    @staticmethod
    async def _any(*events: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _start_ready(self, held: set[str]) -> None:
        candidates = held - set(self._readers) - self._finished
        if not candidates:
            return
        leases = await self.leases.list_leases()
        by_id = {lease.shard_id: lease for lease in leases}
        stored = await self.stored_checkpoints(self.name)
        committed: dict[str, tuple[str, int]] | None = None
        if self.ledger is not None:
            try:
                committed = await asyncio.to_thread(self.ledger.positions, self.name)
            except SinkError as exc:  # the table is unreachable: start nothing, try again later
                log.warning("ledger_positions_failed", stream=self.name, error=str(exc)[:300])
                return
        for shard_id in sorted(candidates):
            lease = by_id.get(shard_id)
            if lease is None:
                continue
            if not LeaseCoordinator.is_ready(shard_id, leases):
                if shard_id not in self._not_ready_logged:
                    self._not_ready_logged.add(shard_id)
                    log.info("shard_waiting_for_parents", stream=self.name, shard_id=shard_id,
                             parents=sorted(lease.parent_shard_ids))
                continue
            if committed is not None:  # the ledger's position, not the local store's
                await self._start_reader(lease, committed.get(shard_id), ledger=True)
            else:
                await self._start_reader(lease, stored.get(shard_id))

    async def _start_reader(self, lease: Lease, stored: tuple[str, int] | None,
                            ledger: bool = False) -> None:
        shard_id = lease.shard_id
        ts = self.stream.timestamp() if lease.checkpoint == AT_TIMESTAMP else None
        lease_pos = Position.from_checkpoint(lease.checkpoint, lease.sub_sequence, ts)
        start = lease_pos
        if stored is not None:
            start = furthest(lease_pos, Position.from_checkpoint(stored[0], stored[1], ts))
        epoch = next(self._epoch_counter)
        self._epochs[shard_id] = epoch
        if ledger and self.ledger is not None:
            self.ledger.expect((self.name, shard_id), epoch, stored)
        self._not_ready_logged.discard(shard_id)
        if start.rank() > lease_pos.rank():
            # Stored here before a crash, never checkpointed in the lease: bring it forward.
            log.info("lease_checkpoint_from_sink", stream=self.name, shard_id=shard_id,
                     lease=str(lease_pos), sink=str(start))
            try:
                await self.commit_checkpoint(shard_id, epoch, start)
            except CheckpointError as exc:  # LeaseLost included: the renew loop notices
                log.warning("lease_checkpoint_failed", stream=self.name, shard_id=shard_id,
                            error=str(exc)[:200])
                if isinstance(exc, LeaseLost):
                    return
        if lease.checkpoint == SHARD_END:
            self._finished.add(shard_id)
            return
        reader = ShardReader(self._kinesis, self.name, shard_id, epoch, start, self.deliver,
                             self.config.kinesis, self._catalog)
        self._readers[shard_id] = asyncio.create_task(self._supervise(reader),
                                                      name=f"reader-{self.name}-{shard_id}")

    async def restart(self, shard_id: str, epoch: int, why: str) -> None:
        """Stop the shard's reader (its unstored rows dropped); the lease loop starts it again
        from the ledger's position if the lease is still held."""
        if self._epochs.get(shard_id) != epoch:
            return
        await self._stop_reader(shard_id, why)
        self._wake.set()

    async def _supervise(self, reader: ShardReader) -> None:
        backoff = Backoff(1.0, max(1.0, self.config.kinesis.reader_restart_max_s))
        while True:
            try:
                await reader.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a crashed shard task is restarted, never silently lost
                reader_events_total.labels(self.name, "restarted").inc()
                delay = backoff.next_delay()
                log.error("shard_reader_crashed", stream=self.name, shard_id=reader.shard_id,
                          error=f"{type(exc).__name__}: {exc}"[:300], restart_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                reader = reader.restarted()

    async def _stop_reader(self, shard_id: str, why: str) -> None:
        task = self._readers.pop(shard_id, None)
        self._epochs.pop(shard_id, None)
        self._finished.discard(shard_id)
        self.discard(self.name, shard_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("shard_reader_stopped", stream=self.name, shard_id=shard_id, reason=why)

    async def _stop_all_readers(self) -> None:
        tasks = list(self._readers.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- shutdown ------------------------------------------------------------------------

    async def stop_reading(self) -> None:
        """Stop every reader; keep renewing leases until ``release`` (the final flush needs them)."""
        self._stopping = True
        self._relist.set()
        await self._stop_all_readers()

    async def release(self) -> None:
        """Give every lease up so other workers take them at once."""
        self._stopping = True
        if self._leases is not None:
            await self._leases.release_all()
        self._released.set()
