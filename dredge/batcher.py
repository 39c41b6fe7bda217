"""The stream daemon's hot path: shard batches -> decode -> parse -> enrich -> roll up ->
one sink transaction per flush interval -> lease checkpoints.

Shard readers hand over ``ReadBatch``es through a bounded queue (a full queue stops the
readers: backpressure). Each batch is decoded and parsed (``parse_batch``), then enriched
and rolled up against ONE snapshot reference (``enrich_batch``; a delay buffer can be put
between the two). Rolled-up rows accumulate per shard. Every ``flush_interval_s`` the rows
of all shards and each shard's new position go to the sink in one transaction
(``store_batch``); only after it returned are the positions checkpointed in the lease table.

Invariant: a shard's checkpoint (sink or lease) never passes data the sink has not stored.
A failed flush stores nothing and checkpoints nothing; the batcher stops taking batches
(readers block) and retries with backoff until the sink is back. A shard whose lease is
lost has its unstored rows dropped: the new owner reads them again from the lease checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dredge.config import PipelineConfig
from dredge.decode import DecodeConfig, decode_records
from dredge.enrich.holdback import Holdback, HoldbackConfig
from dredge.enrich.rollup import Rolled
from dredge.errors import CheckpointError, LeaseLost, SinkError
from dredge.flowlog import kernels
from dredge.flowlog.columns import FlowColumns, RecordCounts
from dredge.flowlog.fields import FlowFormat
from dredge.flowlog.parser import FlowParser
from dredge.pipeline import Enricher, count_records
from dredge.sinks.base import BatchSink, ShardCheckpoint
from dredge.sinks.deadletter import DeadLetters
from dredge.snapshots import SnapshotSource
from dredge.sources.kinesis.leases import SHARD_END
from dredge.sources.kinesis.limits import Backoff
from dredge.sources.kinesis.reader import SEQUENCE, Position, ReadBatch
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter, histogram

log = get_logger(__name__)

flushes_total = counter(
    "dredge_stream_flushes_total",
    "Flushes of the stream pipeline to the sink, by outcome (stored, failed).", ["outcome"])
batches_total = counter(
    "dredge_stream_batches_total",
    "GetRecords batches taken by the pipeline, by outcome (processed, stale: lease gone).",
    ["outcome"])
lease_checkpoints_total = counter(
    "dredge_stream_lease_checkpoints_total",
    "Lease checkpoints after a flush, by outcome (ok, lost, failed: retried next flush).",
    ["outcome"])
batch_seconds = histogram(
    "dredge_stream_batch_seconds",
    "Time to decode, parse, enrich and roll up one GetRecords batch.")


class ShardOwner(Protocol):
    """The stream consumer that holds the shard's lease."""

    def is_current(self, shard_id: str, epoch: int) -> bool: ...
    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None: ...


@dataclass
class ParsedBatch:
    """A batch decoded and parsed, not yet enriched."""

    batch: ReadBatch
    cols: FlowColumns | None
    counts: RecordCounts
    dead: list[dict[str, Any]]
    position: Position  # the shard's position once this batch is stored


@dataclass
class _Pending:
    """What a shard has accumulated since the last flush."""

    epoch: int
    enrichers: dict[int, Enricher] = field(default_factory=dict)  # by id(snapshot)
    position: Position | None = None
    records: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)


def parse_batch(batch: ReadBatch, parser: FlowParser, decode: DecodeConfig) -> ParsedBatch:
    """Decode the envelopes and parse the lines of one batch (no per-line Python)."""
    if batch.shard_end:
        return ParsedBatch(batch, None, RecordCounts(), [], Position(SHARD_END))
    decoded = decode_records(batch.data, decode)
    origin = {"stream": batch.stream, "shard": batch.shard_id}
    lines = decoded.lines
    first = 0
    if batch.skip_through_subseq >= 0 and len(decoded):
        # Resumed AT a KPL aggregate: its user records up to the checkpoint are stored. They
        # come first in the buffer, so dropping them is dropping a prefix of lines.
        first = int(np.count_nonzero((decoded.line_record == 0)
                                     & (decoded.line_subseq <= batch.skip_through_subseq)))
        if first:
            newlines = np.flatnonzero(np.frombuffer(lines, np.uint8) == 10)
            lines = lines[int(newlines[first - 1]) + 1:] if first < len(decoded) else b""
    dead = [
        {**origin, "sequence": batch.sequences[d.record_index], "subseq": d.subseq,
         "reason": d.reason, "field": None, "text": d.sample.decode("utf-8", "replace")}
        for d in decoded.dead_letters
        if not (d.record_index == 0 and d.subseq <= batch.skip_through_subseq)
    ]
    cols: FlowColumns | None = None
    counts = RecordCounts()
    if lines:
        parsed = parser.parse(lines)
        cols, counts = FlowColumns.from_parsed(parsed)
        if counts.malformed:
            for rec in np.flatnonzero(parsed.status != kernels.OK):  # the bad lines only
                line = first + int(parsed.line_no[rec])
                bf = int(parsed.bad_field[rec])
                dead.append({
                    **origin,
                    "sequence": batch.sequences[int(decoded.line_record[line])],
                    "subseq": int(decoded.line_subseq[line]),
                    "reason": kernels.STATUS_REASONS.get(int(parsed.status[rec]), "malformed"),
                    "field": parsed.fmt.fields[bf].replace("-", "_") if bf >= 0 else None,
                    "text": parsed.line_text(int(rec)),
                })
    last = len(batch.data) - 1
    subs = decoded.line_subseq[decoded.line_record == last]
    sub = max(int(subs.max()) if subs.size else 0,
              max((d.subseq for d in decoded.dead_letters if d.record_index == last), default=0))
    return ParsedBatch(batch, cols, counts, dead, Position(SEQUENCE, batch.sequences[last], sub))


def enrich_batch(parsed: ParsedBatch, snapshots: SnapshotSource, window_s: int,
                 into: dict[int, Enricher]) -> None:
    """Enrich and roll up one parsed batch against the snapshot current NOW (read once)."""
    if parsed.cols is None:
        return
    snapshot = snapshots.current()
    enricher = into.get(id(snapshot))
    if enricher is None or enricher.snapshot is not snapshot:
        enricher = into[id(snapshot)] = Enricher(snapshot, window_s)
    enricher.add_columns(parsed.cols, parsed.counts)


_Key = tuple[str, str]  # (stream, shard)


@dataclass
class _HeldBatch:
    """A parsed batch in the holdback (the raw records are not kept)."""

    key: _Key
    epoch: int
    parsed: ParsedBatch
    records: int


class StreamBatcher:
    def __init__(
        self,
        sink: BatchSink,
        dead: DeadLetters,
        snapshots: SnapshotSource,
        decode: DecodeConfig,
        pipeline: PipelineConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._dead = dead
        self._snapshots = snapshots
        self._decode = decode
        self._config = pipeline
        self._clock = clock
        self._queue: asyncio.Queue[ReadBatch] = asyncio.Queue(pipeline.queue_batches)
        self._owners: dict[str, ShardOwner] = {}
        self._parsers: dict[str, FlowParser] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        # Stored in the sink, not yet in the lease table: (epoch, position).
        self._unconfirmed: dict[tuple[str, str], tuple[int, Position]] = {}
        self._draining = asyncio.Event()
        self._stopped = asyncio.Event()
        self._backoff = Backoff(min(0.5, pipeline.sink_retry_max_s), pipeline.sink_retry_max_s)
        self._holdback: Holdback[_HeldBatch] | None = None
        if pipeline.holdback_s > 0:
            self._holdback = Holdback(HoldbackConfig(pipeline.holdback_s, pipeline.holdback_max_rows),
                                      clock=clock)
        self._waiting: tuple[_Key, _HeldBatch, int] | None = None  # parsed, holdback full
        self.flushes = 0

    def register(self, stream: str, fmt: FlowFormat, owner: ShardOwner) -> None:
        self._owners[stream] = owner
        self._parsers[stream] = FlowParser(fmt)

    async def put(self, batch: ReadBatch) -> None:
        """A reader hands over a batch (waits while the pipeline is full)."""
        await self._queue.put(batch)

    def discard(self, stream: str, shard_id: str) -> None:
        """The lease is gone: forget what the shard has not stored."""
        key = (stream, shard_id)
        dropped = self._pending.pop(key, None)
        self._unconfirmed.pop(key, None)
        held = self._holdback.discard(key) if self._holdback is not None else 0
        if self._waiting is not None and self._waiting[0] == key:
            self._waiting = None
            held += 1
        if (dropped is not None and dropped.records) or held:
            log.info("shard_pending_dropped", stream=stream, shard_id=shard_id,
                     records=dropped.records if dropped is not None else 0, held_batches=held)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Take batches and flush every interval until ``drain_and_stop``; then flush a last time."""
        getter: asyncio.Task[ReadBatch] | None = None
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
                if getter is not None:
                    await asyncio.wait({getter}, timeout=timeout)
                else:  # a parsed batch waits for room in the holdback: no new batches
                    await asyncio.sleep(timeout)
                if getter is not None and getter.done():
                    batch = getter.result()
                    getter = None
                    if self._draining.is_set() and self._holdback is not None:
                        continue  # it would be held, then dropped: read again next run
                    await self._process(batch)
                elif self._draining.is_set() and (self._queue.empty() or self._holdback is not None):
                    if getter is not None:
                        getter.cancel()
                        getter = None
                    break
                if self._clock() >= next_flush:
                    await self._flush_until_stored()
                    next_flush = self._clock() + self._config.flush_interval_s
            await self._release_due()
            await self._final_flush()
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
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

    async def _process(self, batch: ReadBatch) -> None:
        owner = self._owners.get(batch.stream)
        key = (batch.stream, batch.shard_id)
        if owner is None or not owner.is_current(batch.shard_id, batch.epoch):
            batches_total.labels("stale").inc()
            return
        parser = self._parsers[batch.stream]
        if self._holdback is None:
            pending = self._pending_for(key, batch.epoch)
            await asyncio.to_thread(self._work, batch, parser, pending)
            batches_total.labels("processed").inc()
        else:  # counted when it comes out of the holdback
            parsed = await asyncio.to_thread(self._parse, batch, parser)
            rows = parsed.cols.n if parsed.cols is not None else 0
            self._waiting = (key, _HeldBatch(key, batch.epoch, parsed, len(batch.data)), max(rows, 1))
            await self._hold_waiting()

    def _pending_for(self, key: _Key, epoch: int) -> _Pending:
        pending = self._pending.get(key)
        if pending is None or pending.epoch != epoch:
            pending = self._pending[key] = _Pending(epoch)
        return pending

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
        work: list[tuple[_HeldBatch, _Pending]] = []
        for _, held in hb.ready():
            stream, shard = held.key
            owner = self._owners.get(stream)
            if owner is None or not owner.is_current(shard, held.epoch):
                batches_total.labels("stale").inc()
                continue
            # resolved here, on the loop: a discard() meanwhile orphans it (as in _process)
            work.append((held, self._pending_for((stream, shard), held.epoch)))
        if work:
            await asyncio.to_thread(self._apply_released, work)
            batches_total.labels("processed").inc(len(work))
        await self._hold_waiting()

    def _apply_released(self, work: list[tuple[_HeldBatch, _Pending]]) -> None:
        for held, pending in work:
            self._apply(held.parsed, pending, held.records)

    def _parse(self, batch: ReadBatch, parser: FlowParser) -> ParsedBatch:
        t0 = time.perf_counter()
        parsed = parse_batch(batch, parser, self._decode)
        count_records("stream", parsed.counts)
        batch_seconds.observe(time.perf_counter() - t0)
        return parsed

    def _apply(self, parsed: ParsedBatch, pending: _Pending, records: int) -> None:
        """Enrich and roll up into the shard's pending rows; its position moves to this batch's."""
        enrich_batch(parsed, self._snapshots, self._config.window_s, pending.enrichers)
        pending.position = parsed.position
        pending.records += records
        pending.dead.extend(parsed.dead)

    def _work(self, batch: ReadBatch, parser: FlowParser, pending: _Pending) -> None:
        t0 = time.perf_counter()
        parsed = parse_batch(batch, parser, self._decode)
        self._apply(parsed, pending, len(batch.data))
        count_records("stream", parsed.counts)
        batch_seconds.observe(time.perf_counter() - t0)

    # -- flushing ------------------------------------------------------------------------

    async def _flush_until_stored(self) -> None:
        """Flush; on a sink failure wait (backoff) and retry; batches wait meanwhile."""
        while not await self.flush():
            delay = self._backoff.next_delay()
            log.warning("flush_retry_wait", seconds=round(delay, 2))
            try:
                await asyncio.wait_for(self._draining.wait(), delay)
            except TimeoutError:
                continue
            return  # shutting down: the final flush makes its own attempts
        self._backoff.reset()

    async def _final_flush(self) -> None:
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
            rows, checkpoints = await asyncio.to_thread(self._prepare, pending)
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

    def _prepare(self, pending: dict[tuple[str, str], _Pending]
                 ) -> tuple[list[Rolled], list[ShardCheckpoint]]:
        # Facts + owner dictionaries: what the DuckDB sink stores fastest (no strings per row).
        rolled = [e.rolled() for p in pending.values() for e in p.enrichers.values()]
        rows = [r for r in rolled if r.num_rows]
        checkpoints = [
            ShardCheckpoint(stream, shard, _sequence(p.position), p.position.sub_sequence, p.records)
            for (stream, shard), p in pending.items() if p.position is not None
        ]
        return rows, checkpoints

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


def _sequence(position: Position) -> str:
    if position.kind == SEQUENCE and position.sequence is not None:
        return position.sequence
    return position.kind
