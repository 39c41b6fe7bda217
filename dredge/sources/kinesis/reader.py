"""One shard, read with GetRecords in a loop: positions, limits, faults, the shard's end.

A ``ShardReader`` starts at a ``Position`` (a checkpoint or the configured start), hands
each non-empty GetRecords response to the pipeline as a ``ReadBatch`` (whole Kinesis
records, in order, with their sequence numbers) through a bounded queue, and stops after
handing over a final batch with ``shard_end=True`` when the shard is finished. It never
checkpoints: the pipeline does, once the sink stored the data.

Positions. A checkpoint ``(sequence, sub)`` means every record up to ``sequence`` is
stored, and, for a KPL aggregate, its user records up to ``sub``. ``sub == 0`` resumes
``AFTER_SEQUENCE_NUMBER``; ``sub > 0`` resumes ``AT_SEQUENCE_NUMBER`` and the first batch
says (``skip_through_subseq``) which user records of its first record were already stored,
as the KCL does.

Faults. ProvisionedThroughputExceeded, KMS throttling, 5xx and network errors: wait (capped
exponential backoff with full jitter) and retry the same iterator. ExpiredIterator: a new
iterator after the last record handed over. A sequence number GetShardIterator refuses
(InvalidArgument: older than the retention period, trimmed) -> TRIM_HORIZON, logged.
Every fault is counted in ``dredge_kinesis_reader_events_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from botocore.exceptions import ClientError
from prometheus_client import Counter, Gauge

from dredge.config import KinesisConfig
from dredge.errors import SourceError
from dredge.sources.kinesis.clients import (
    KMS_THROTTLING,
    NETWORK_ERRORS,
    SERVER,
    THROTTLING,
    error_code,
    http_status,
)
from dredge.sources.kinesis.discovery import ShardCatalog
from dredge.sources.kinesis.leases import AT_TIMESTAMP, SHARD_END, TRIM_HORIZON
from dredge.sources.kinesis.limits import Backoff, ShardRateLimiter
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import REGISTRY

log = get_logger(__name__)

SEQUENCE = "SEQUENCE"
_RETRYABLE_NETWORK: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, aiohttp.ClientError)

reader_events_total = Counter(
    "dredge_kinesis_reader_events_total",
    "Shard reader events: throttled, kms_throttled, server_error, network_error,"
    " expired_iterator, trimmed_checkpoint, shard_end, shard_gone, restarted.",
    ["stream", "event"],
    registry=REGISTRY,
)
get_records_total = Counter(
    "dredge_kinesis_get_records_total",
    "GetRecords calls that returned (ok), by stream.",
    ["stream"],
    registry=REGISTRY,
)
records_read_total = Counter(
    "dredge_kinesis_records_read_total",
    "Kinesis records handed to the pipeline.",
    ["stream"],
    registry=REGISTRY,
)
bytes_read_total = Counter(
    "dredge_kinesis_bytes_read_total",
    "Bytes of record data handed to the pipeline.",
    ["stream"],
    registry=REGISTRY,
)
millis_behind_latest = Gauge(
    "dredge_kinesis_millis_behind_latest",
    "MillisBehindLatest of the shard's last GetRecords response.",
    ["stream", "shard"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Position:
    """Where to start reading a shard."""

    kind: str  # TRIM_HORIZON | LATEST | AT_TIMESTAMP | SEQUENCE | SHARD_END
    sequence: str | None = None
    sub_sequence: int = 0
    timestamp: datetime | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str, sub_sequence: int = 0,
                        timestamp: datetime | None = None) -> Position:
        if checkpoint.isdigit():
            return cls(SEQUENCE, checkpoint, sub_sequence)
        if checkpoint == AT_TIMESTAMP:
            return cls(AT_TIMESTAMP, timestamp=timestamp)
        return cls(checkpoint)

    def rank(self) -> tuple[int, int, int]:
        """Order along the shard: start sentinels < sequence numbers < SHARD_END."""
        if self.kind == SHARD_END:
            return (2, 0, 0)
        if self.kind == SEQUENCE and self.sequence is not None:
            return (1, int(self.sequence), self.sub_sequence)
        return (0, 0, 0)

    def __str__(self) -> str:
        if self.kind == SEQUENCE:
            return f"{self.sequence}/{self.sub_sequence}"
        return self.kind


def furthest(a: Position, b: Position) -> Position:
    """The later of two positions of one shard (the first when they are equal)."""
    return b if b.rank() > a.rank() else a


@dataclass(frozen=True)
class ReadBatch:
    """One GetRecords response's records, or (``shard_end``) the end of the shard."""

    stream: str
    shard_id: str
    epoch: int  # which lease tenure read it: batches of an earlier tenure are discarded
    data: list[bytes]
    sequences: list[str]
    skip_through_subseq: int = -1  # >= 0: user records <= this of data[0] are already stored
    shard_end: bool = False

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.data))


Sink = Callable[[ReadBatch], Awaitable[None]]


class ShardReader:
    def __init__(
        self,
        client: Any,
        stream: str,
        shard_id: str,
        epoch: int,
        start: Position,
        deliver: Sink,
        config: KinesisConfig,
        catalog: ShardCatalog,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self.stream = stream
        self.shard_id = shard_id
        self.epoch = epoch
        self.start = start
        self._deliver = deliver
        self._config = config
        self._catalog = catalog
        self._sleep = sleep
        self._limiter = ShardRateLimiter(config.max_calls_per_s, config.max_bytes_per_s, clock)
        self._backoff = Backoff(config.backoff_base_s, config.backoff_max_s, rng)
        # The last record handed over: a restarted reader continues after it.
        self.position = start
        self.finished = False

    def _event(self, event: str, **ctx: Any) -> None:
        reader_events_total.labels(self.stream, event).inc()
        log.warning("shard_" + event, stream=self.stream, shard_id=self.shard_id, **ctx)

    async def run(self) -> None:
        log.info("shard_reader_started", stream=self.stream, shard_id=self.shard_id,
                 position=str(self.position), epoch=self.epoch)
        try:
            await self._run()
        finally:
            with contextlib.suppress(KeyError):
                millis_behind_latest.remove(self.stream, self.shard_id)

    async def _run(self) -> None:
        if self.position.kind == SHARD_END:
            await self._end()
            return
        iterator, skip = await self._iterator(self.position)
        empty_closed = 0
        while True:
            if iterator is None:
                await self._end()
                return
            wait = self._limiter.wait_time()
            if wait > 0:
                await self._sleep(wait)
            self._limiter.on_call()
            try:
                resp = await self._client.get_records(ShardIterator=iterator,
                                                      Limit=self._config.max_records)
            except ClientError as exc:
                code = error_code(exc)
                if code == "ExpiredIteratorException":
                    self._event("expired_iterator", position=str(self.position))
                    iterator, skip = await self._iterator(self.position)
                    continue
                await self._retry_wait(exc, code)
                continue
            except _RETRYABLE_NETWORK as exc:
                self._event("network_error", error=type(exc).__name__)
                await self._sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            get_records_total.labels(self.stream).inc()
            records = resp.get("Records", [])
            behind = resp.get("MillisBehindLatest")
            if behind is not None:
                millis_behind_latest.labels(self.stream, self.shard_id).set(behind)
            nxt = resp.get("NextShardIterator")
            if records:
                empty_closed = 0
                data = [r["Data"] for r in records]
                seqs = [str(r["SequenceNumber"]) for r in records]
                first_skip = skip if skip >= 0 and seqs[0] == self.position.sequence else -1
                skip = -1
                batch = ReadBatch(self.stream, self.shard_id, self.epoch, data, seqs, first_skip)
                self._limiter.on_bytes(batch.nbytes)
                records_read_total.labels(self.stream).inc(len(data))
                bytes_read_total.labels(self.stream).inc(batch.nbytes)
                await self._deliver(batch)
                self.position = Position(SEQUENCE, seqs[-1], 0)
            elif nxt is not None and self._closed_and_drained(behind):
                # Emulators (moto) never return a null iterator; a closed shard that answers
                # empty twice at its ending sequence number is finished.
                empty_closed += 1
                if empty_closed >= 2:
                    nxt = None
            iterator = nxt
            if nxt is not None and not records:
                await self._sleep(self._config.idle_poll_interval_s)

    def _closed_and_drained(self, behind: int | None) -> bool:
        ending = self._catalog.ending_sequence(self.shard_id)
        if ending is None or behind not in (0, None):
            return False
        last = int(self.position.sequence) if self.position.kind == SEQUENCE and self.position.sequence else -1
        return last >= int(ending) or int(ending) == 0

    async def _end(self) -> None:
        reader_events_total.labels(self.stream, "shard_end").inc()
        log.info("shard_end_reached", stream=self.stream, shard_id=self.shard_id,
                 position=str(self.position))
        await self._deliver(ReadBatch(self.stream, self.shard_id, self.epoch, [], [], shard_end=True))
        self.position = Position(SHARD_END)
        self.finished = True

    async def _retry_wait(self, exc: ClientError, code: str) -> None:
        if code in THROTTLING:
            self._event("throttled", error=code)
        elif code in KMS_THROTTLING:
            self._event("kms_throttled", error=code)
        elif code in SERVER or http_status(exc) >= 500:
            self._event("server_error", error=code)
        else:
            raise SourceError(f"{self.stream}/{self.shard_id}: {exc}") from exc
        await self._sleep(self._backoff.next_delay())

    async def _iterator(self, pos: Position) -> tuple[str | None, int]:
        """(shard iterator or None when the shard is gone, sub-sequence to skip through)."""
        while True:
            kwargs: dict[str, Any] = {"StreamName": self.stream, "ShardId": self.shard_id}
            skip = -1
            if pos.kind == SEQUENCE:
                kwargs["StartingSequenceNumber"] = pos.sequence
                if pos.sub_sequence > 0:
                    kwargs["ShardIteratorType"] = "AT_SEQUENCE_NUMBER"
                    skip = pos.sub_sequence
                else:
                    kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            elif pos.kind == AT_TIMESTAMP:
                kwargs["ShardIteratorType"] = AT_TIMESTAMP
                kwargs["Timestamp"] = pos.timestamp
            else:
                kwargs["ShardIteratorType"] = pos.kind
            try:
                resp = await self._client.get_shard_iterator(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code == "InvalidArgumentException" and pos.kind == SEQUENCE:
                    # Older than the retention period (or not of this shard): read what is left.
                    self._event("trimmed_checkpoint", position=str(pos), error=str(exc)[:200])
                    pos = Position(TRIM_HORIZON)
                    self.position = pos
                    continue
                if code == "ResourceNotFoundException":
                    self._event("shard_gone", error=str(exc)[:200])
                    return None, -1
                await self._retry_wait(exc, code)
                continue
            except _RETRYABLE_NETWORK as exc:
                self._event("network_error", error=type(exc).__name__)
                await self._sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            return str(resp["ShardIterator"]), skip
