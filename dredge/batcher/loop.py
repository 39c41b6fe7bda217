"""StreamBatcher: the stream daemon's loop between the shard readers and the sink.

Shard readers hand over ``ReadBatch``es through a bounded queue (a full queue stops the
readers: backpressure). Each batch is decoded and parsed, then enriched and rolled up against
ONE snapshot reference (:mod:`dredge.batcher.batches`; a delay buffer, the holdback, can be
put between the two). Every ``flush_interval_s`` the :class:`~dredge.batcher.flusher.Flusher`
stores the rows of all shards and their new positions in one transaction, then checkpoints
the leases. A shard whose lease is lost has its unstored rows dropped: the new owner reads
them again from the lease checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dredge.batcher.batches import HeldBatch, ParsedBatch, Pending, ShardKey, parse_batch
from dredge.batcher.flusher import Flusher, ShardOwner
from dredge.cores import usable_cores
from dredge.decode import DecodeConfig
from dredge.enrich.holdback import Holdback, HoldbackConfig
from dredge.flowlog.fields import FlowFormat
from dredge.flowlog.parser import FlowParser
from dredge.pipeline import PipelineConfig, count_records
from dredge.sinks.base import BatchSink
from dredge.sinks.deadletter import DeadLetters
from dredge.snapshots import SnapshotSource
from dredge.sources.kinesis.reader import ReadBatch
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter, histogram

if TYPE_CHECKING:
    from dredge.sinks.iceberg.ledger import IcebergLedger

log = get_logger(__name__)

batches_total = counter(
    "dredge_stream_batches_total",
    "GetRecords batches taken by the pipeline, by outcome (processed, stale: lease gone).",
    ["outcome"])
batch_seconds = histogram(
    "dredge_stream_batch_seconds",
    "Time to decode, parse, enrich and roll up one GetRecords batch.")


class StreamBatcher:
    """The pipeline between the shard readers and the sink: one per daemon, every stream.

    Readers ``put`` batches; ``register`` tells it each stream's format and lease owner;
    ``discard`` drops a shard whose lease is gone; ``run`` until ``drain_and_stop``.
    """

    def __init__(
        self,
        sink: BatchSink,
        dead: DeadLetters,
        snapshots: SnapshotSource,
        decode: DecodeConfig,
        pipeline: PipelineConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        ledger: IcebergLedger | None = None,  # [sink.iceberg]: the flusher feeds and commits it
    ) -> None:
        self._owners: dict[str, ShardOwner] = {}
        self._flusher = Flusher(sink, dead, self._owners, pipeline, ledger, clock)
        self._snapshots, self._decode, self._config = snapshots, decode, pipeline
        self._clock = clock
        self._queue: asyncio.Queue[ReadBatch] = asyncio.Queue(pipeline.queue_batches)
        self._parsers: dict[str, FlowParser] = {}
        self._draining = asyncio.Event()
        self._stopped = asyncio.Event()
        self._holdback: Holdback[HeldBatch] | None = None
        if pipeline.holdback_s > 0:
            self._holdback = Holdback(HoldbackConfig(pipeline.holdback_s, pipeline.holdback_max_rows),
                                      clock=clock)
        self._waiting: tuple[ShardKey, HeldBatch, int] | None = None  # parsed, holdback full
        # each shard's last MillisBehindLatest (absent: no answer yet this tenure), and
        # whether one caught up since the last flush (flushed once the queue is empty)
        self._behind: dict[ShardKey, int | None] = {}
        self._caught_up = False
        self._settling = False  # shards started reading: not all at the tip yet
        # batches being processed on threads, one per shard at most (a shard's in order), as
        # many shards at once as there are usable cores (decode, parse and the join release
        # the GIL): a backlog's answers, queued together, use every core
        self._working: dict[ShardKey, asyncio.Task[None]] = {}
        self._parallel = usable_cores()

    @property
    def flushes(self) -> int:
        """Flushes stored so far."""
        return self._flusher.flushes

    def register(self, stream: str, fmt: FlowFormat, owner: ShardOwner) -> None:
        self._owners[stream] = owner
        self._parsers[stream] = FlowParser(fmt)

    async def put(self, batch: ReadBatch) -> None:
        """A reader hands over a batch (waits while the pipeline is full)."""
        await self._queue.put(batch)

    def discard(self, stream: str, shard_id: str) -> None:
        """The lease is gone: forget what the shard has not stored."""
        key = (stream, shard_id)
        self._behind.pop(key, None)
        records = self._flusher.discard(key)
        held = self._holdback.discard(key) if self._holdback is not None else 0
        if self._waiting is not None and self._waiting[0] == key:
            self._waiting = None
            held += 1
        if records or held:
            log.info("shard_pending_dropped", stream=stream, shard_id=shard_id,
                     records=records, held_batches=held)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Take batches and flush every interval until ``drain_and_stop``; then flush a last time."""
        getter: asyncio.Task[ReadBatch] | None = None
        # drain_and_stop wakes the loop at once, not at the next flush or batch
        draining = asyncio.ensure_future(self._draining.wait())
        next_flush = self._clock() + self._config.flush_interval_s
        if self._holdback is not None:
            await self._holdback.start()
        try:
            while True:
                await self._release_due()
                if getter is None and self._waiting is None:
                    getter = asyncio.ensure_future(self._queue.get())
                timeout = max(0.0, min(next_flush, self._next_due()) - self._clock())
                if self._draining.is_set():
                    timeout = min(timeout, 0.05)
                wake: set[asyncio.Future[Any]] = set() if draining.done() else {draining}
                wake |= set(self._working.values())  # a batch done: maybe enough rows to flush
                if getter is not None:
                    await asyncio.wait({getter, *wake}, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
                elif wake:  # a parsed batch waits for room in the holdback: no new batches
                    await asyncio.wait(wake, timeout=timeout)
                else:
                    await asyncio.sleep(timeout)
                if getter is not None and getter.done():
                    batch = getter.result()
                    getter = None
                    if self._draining.is_set() and self._holdback is not None:
                        continue  # it would be held, then dropped: read again next run
                    await self._dispatch(batch)
                elif self._draining.is_set() and (self._queue.empty() or self._holdback is not None):
                    if getter is not None:
                        getter.cancel()
                        getter = None
                    break
                self._reap()
                if self._clock() >= next_flush or (self._caught_up and self._queue.empty()):
                    # every shard's rows, once their batches are done (meanwhile, a shard
                    # done early may go ahead: flush_rows)
                    await self._settle(early=True)
                    await self._flush()
                    self._caught_up = False
                    next_flush = self._clock() + self._config.flush_interval_s
                elif self._enough_rows():  # the shards not at work; the others wait
                    await self._flush(skip=set(self._working))
            await self._settle()
            await self._release_due()
            await self._flusher.final_flush()
        finally:
            draining.cancel()
            if getter is not None and not getter.done():
                getter.cancel()
            for working in self._working.values():
                working.cancel()
            with contextlib.suppress(Exception):  # a flush still storing: let it land
                await self._flusher.landed()
            with contextlib.suppress(Exception):  # stored rows' leases: let them land
                await self._flusher.checkpoints_landed()
            if self._holdback is not None:
                held = self._holdback.held_batches + (self._waiting is not None)
                if held:
                    log.info("holdback_dropped", batches=held,
                             reason="stopping: not checkpointed, read again next run")
                self._waiting = None
                await self._holdback.stop()
            self._stopped.set()

    async def drain_and_stop(self) -> None:
        """Readers have stopped: process what is queued, flush, checkpoint, and return.

        With a holdback, batches still held (or queued behind them) are dropped instead."""
        self._draining.set()
        await self._stopped.wait()

    @property
    def held_batches(self) -> int:
        return self._holdback.held_batches if self._holdback is not None else 0

    def _next_due(self) -> float:
        """When the oldest held batch is due (inf when nothing is held)."""
        hb = self._holdback
        if hb is None or not hb.held_batches:
            return float("inf")
        return self._clock() + hb.config.delay_s - hb.oldest_age()

    async def _dispatch(self, batch: ReadBatch) -> None:
        """Start the batch on a thread beside those of other shards (at most one per core, a
        shard's batches in order) and return; with a holdback, parse it here."""
        key = (batch.stream, batch.shard_id)
        if self._holdback is None:
            if key in self._working:  # its shard's previous batch first
                await asyncio.wait({self._working[key]})
            self._reap()
            while len(self._working) >= self._parallel:
                await asyncio.wait(set(self._working.values()), return_when=asyncio.FIRST_COMPLETED)
                self._reap()
        # checked, noted and given its pending rows here, on the loop, with no await until
        # the thread starts: a discard() or a flush meanwhile sees it whole or not at all
        owner = self._owners.get(batch.stream)
        if owner is None or not owner.is_current(batch.shard_id, batch.epoch):
            batches_total.labels("stale").inc()
            return
        parser = self._parsers[batch.stream]
        self._note_behind(key, batch.behind_ms)
        if self._holdback is None:
            pending = self._flusher.pending_for(key, batch.epoch)
            self._working[key] = asyncio.create_task(self._process(batch, parser, pending),
                                                     name="batch")
        else:  # counted when it comes out of the holdback
            parsed = await asyncio.to_thread(self._parse, batch, parser)
            rows = parsed.cols.n if parsed.cols is not None else 0
            self._waiting = (key, HeldBatch(key, batch.epoch, parsed, len(batch.data)), max(rows, 1))
            await self._hold_waiting()

    async def _flush(self, skip: set[ShardKey] | None = None) -> None:
        """Flush in the background every shard's rows but ``skip``'s (being processed): the
        sink stores while the next batches are processed. The flush before lands first
        (positions are stored in order); one that failed is retried here with backoff, all
        batches done and no new ones taken meanwhile."""
        if not await self._flusher.landed():
            await self._settle()
            await self._flusher.flush_until_stored(self._draining)
        elif not skip or self._flusher.has_pending(skip):  # an interval's flush runs even empty
            self._flusher.flush_in_background(skip or ())

    def _enough_rows(self) -> bool:
        """``flush_rows`` rolled-up rows of shards not at work wait and no flush is storing:
        store them while the next batches are read (else a backlog would all be stored after
        its last answer)."""
        rows = self._config.flush_rows
        return (rows > 0 and not self._flusher.storing
                and self._flusher.pending_rows(self._working.keys()) >= rows)

    def _reap(self) -> None:
        """Forget the batches done; raise what one raised (an index that failed to load)."""
        for key, task in list(self._working.items()):
            if task.done():
                del self._working[key]
                task.result()

    async def _settle(self, early: bool = False) -> None:
        """Wait for every batch being processed (before a flush takes every shard's rows).
        ``early``: meanwhile, once the shards done have ``flush_rows``, they are flushed
        ahead (a backlog's last answers: the first done is stored while the last is parsed)."""
        while self._working:
            await asyncio.wait(set(self._working.values()), return_when=asyncio.FIRST_COMPLETED)
            self._reap()
            if early and self._working and self._enough_rows():
                await self._flush(skip=set(self._working))

    async def _process(self, batch: ReadBatch, parser: FlowParser, pending: Pending) -> None:
        await asyncio.to_thread(self._work, batch, parser, pending)
        batches_total.labels("processed").inc()

    def _note_behind(self, key: ShardKey, behind_ms: int | None) -> None:
        """Flush without waiting for the interval when a shard catches up (not with a
        holdback, which keeps rows back anyway):

        - a shard whose answer reaches the tip (0 ms behind) after its previous answer was a
          flush interval or more behind: at once;
        - shards starting to read (a first answer): once every shard this worker reads has
          reached the tip, so that a backlog read at start is stored in one flush, not one per
          shard while moto or Kinesis still serves the others.

        An emulator that does not say how far behind a shard is never triggers it."""
        before = self._behind.get(key, -1)  # -1: no answer yet
        self._behind[key] = behind_ms
        if self._holdback is not None or behind_ms is None:
            return
        if before == -1:
            self._settling = True
        if behind_ms != 0 or before is None:
            return
        if before != -1 and before >= self._config.flush_interval_s * 1000:
            self._caught_up = True
            log.info("shard_caught_up", stream=key[0], shard_id=key[1], behind_ms=before)
        elif self._settling and self._all_at_tip():
            self._settling = False
            self._caught_up = True
            log.info("shards_caught_up", shards=sum(1 for b in self._behind.values() if b == 0))

    def _all_at_tip(self) -> bool:
        """Every shard read (as its consumer says; those that do not say: the ones that
        answered) last answered 0 ms behind."""
        for stream, owner in self._owners.items():
            reading = getattr(owner, "reading", None)
            shards = reading() if callable(reading) else [s for st, s in self._behind if st == stream]
            if any(self._behind.get((stream, s), -1) not in (0, None) for s in shards):
                return False  # None: an emulator that never says; it cannot hold the others
        return True

    async def _hold_waiting(self) -> None:
        """Put the waiting batch into the holdback if it fits (never waits: this loop is
        also the one that releases)."""
        hb = self._holdback
        if hb is None or self._waiting is None:
            return
        key, held, rows = self._waiting
        if hb.held_batches and hb.held_rows + rows > hb.config.max_rows:
            return
        self._waiting = None
        await hb.put(key, held, rows)

    async def _release_due(self) -> None:
        """Enrich the held batches whose delay has passed, oldest first."""
        hb = self._holdback
        if hb is None:
            return
        work: list[tuple[HeldBatch, Pending]] = []
        for _, held in hb.ready():
            stream, shard = held.key
            owner = self._owners.get(stream)
            if owner is None or not owner.is_current(shard, held.epoch):
                batches_total.labels("stale").inc()
                continue
            # resolved here, on the loop: a discard() meanwhile orphans it (as in _process)
            work.append((held, self._flusher.pending_for((stream, shard), held.epoch)))
        if work:
            await asyncio.to_thread(self._apply_released, work)
            batches_total.labels("processed").inc(len(work))
        await self._hold_waiting()

    def _apply_released(self, work: list[tuple[HeldBatch, Pending]]) -> None:
        for held, pending in work:
            pending.add(held.parsed, self._snapshots, self._config.window_s, held.records,
                        self._config.ephemeral_from)

    def _parse(self, batch: ReadBatch, parser: FlowParser) -> ParsedBatch:
        t0 = time.perf_counter()
        parsed = parse_batch(batch, parser, self._decode)
        count_records("stream", parsed.counts)
        batch_seconds.observe(time.perf_counter() - t0)
        return parsed

    def _work(self, batch: ReadBatch, parser: FlowParser, pending: Pending) -> None:
        t0 = time.perf_counter()
        counts = pending.add_batch(batch, parser, self._decode, self._snapshots, self._config.window_s,
                                   ephemeral_from=self._config.ephemeral_from)
        count_records("stream", counts)
        batch_seconds.observe(time.perf_counter() - t0)
