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
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from botocore.exceptions import ClientError

from dredge.aws import Backoff, aio_transport_errors, error_code, error_name, retry_reason
from dredge.errors import SourceError
from dredge.sources.kinesis.config import KinesisConfig
from dredge.sources.kinesis.discovery import ShardCatalog
from dredge.sources.kinesis.limits import ShardRateLimiter
from dredge.sources.kinesis.metrics import (
    bytes_read_total,
    get_records_total,
    millis_behind_latest,
    reader_events_total,
    records_read_total,
)
from dredge.sources.kinesis.shards import AT_TIMESTAMP, SEQUENCE, SHARD_END, TRIM_HORIZON, Position
from dredge.telemetry.logging import get_logger

__all__ = ["ReadBatch", "ShardReader", "Sink"]

log = get_logger(__name__)

# Answers a loop handles itself instead of retrying or failing.
_EXPIRED = "ExpiredIteratorException"
_TRIMMED = "InvalidArgumentException"
_GONE = "ResourceNotFoundException"


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
    behind_ms: int | None = None  # the answer's MillisBehindLatest (0: it reached the tip)

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.data))


Sink = Callable[[ReadBatch], Awaitable[None]]


@dataclass(eq=False)
class ShardReader:
    """Reads one shard from ``start`` until it ends or the task is cancelled. A crashed reader
    is replaced by ``restarted()``, which goes on after the last record handed over."""

    client: Any
    stream: str
    shard_id: str
    epoch: int
    start: Position
    deliver: Sink
    config: KinesisConfig
    catalog: ShardCatalog
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random | None = None

    def __post_init__(self) -> None:
        cfg = self.config
        self._limiter = ShardRateLimiter(cfg.max_calls_per_s, cfg.max_bytes_per_s, self.clock)
        self._backoff = Backoff(cfg.backoff_base_s, cfg.backoff_max_s, self.rng)
        # The last record handed over: a restarted reader continues after it.
        self.position = self.start
        self.finished = False

    def restarted(self) -> ShardReader:
        """A fresh reader of the same tenure, starting after the last record handed over."""
        return dataclasses.replace(self, start=self.position)

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
            resp = await self._call(self._get_records, {_EXPIRED}, ShardIterator=iterator)
            if isinstance(resp, ClientError):  # the iterator expired
                self._event("expired_iterator", position=str(self.position))
                iterator, skip = await self._iterator(self.position)
                continue
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
                batch = ReadBatch(self.stream, self.shard_id, self.epoch, data, seqs, first_skip,
                                  behind_ms=behind if isinstance(behind, int) else None)
                self._limiter.on_bytes(batch.nbytes)
                records_read_total.labels(self.stream).inc(len(data))
                bytes_read_total.labels(self.stream).inc(batch.nbytes)
                await self.deliver(batch)
                self.position = Position(SEQUENCE, seqs[-1], 0)
            elif nxt is not None and self._closed_and_drained(behind):
                # Emulators (moto) never return a null iterator; a closed shard that answers
                # empty twice at its ending sequence number is finished.
                empty_closed += 1
                if empty_closed >= 2:
                    nxt = None
            iterator = nxt
            if nxt is not None and not records:
                await self.sleep(self.config.idle_poll_interval_s)

    async def _get_records(self, **kwargs: Any) -> dict[str, Any]:
        wait = self._limiter.wait_time()
        if wait > 0:
            await self.sleep(wait)
        self._limiter.on_call()
        resp: dict[str, Any] = await self.client.get_records(Limit=self.config.max_records, **kwargs)
        return resp

    async def _call(self, method: Callable[..., Awaitable[dict[str, Any]]], handled: set[str],
                    **kwargs: Any) -> dict[str, Any] | ClientError:
        """The answer, or the ClientError whose code the caller ``handled`` itself. Throttling,
        5xx and network errors are counted and waited out, then the call is sent again;
        anything else raises SourceError."""
        while True:
            try:
                resp = await method(**kwargs)
            except (ClientError, *aio_transport_errors()) as exc:
                if isinstance(exc, ClientError) and error_code(exc) in handled:
                    return exc
                reason = retry_reason(exc)
                if reason is None:
                    raise SourceError(f"{self.stream}/{self.shard_id}: {exc}") from exc
                self._event(reason, error=error_name(exc))
                await self.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            return resp

    def _closed_and_drained(self, behind: int | None) -> bool:
        ending = self.catalog.ending_sequence(self.shard_id)
        if ending is None or behind not in (0, None):
            return False
        last = int(self.position.sequence) if self.position.kind == SEQUENCE and self.position.sequence else -1
        return last >= int(ending) or int(ending) == 0

    async def _end(self) -> None:
        reader_events_total.labels(self.stream, "shard_end").inc()
        log.info("shard_end_reached", stream=self.stream, shard_id=self.shard_id,
                 position=str(self.position))
        await self.deliver(ReadBatch(self.stream, self.shard_id, self.epoch, [], [], shard_end=True))
        self.position = Position(SHARD_END)
        self.finished = True

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
            handled = {_TRIMMED, _GONE} if pos.kind == SEQUENCE else {_GONE}
            resp = await self._call(self.client.get_shard_iterator, handled, **kwargs)
            if not isinstance(resp, ClientError):
                return str(resp["ShardIterator"]), skip
            if error_code(resp) == _GONE:
                self._event("shard_gone", error=str(resp)[:200])
                return None, -1
            # Older than the retention period (or not of this shard): read what is left.
            self._event("trimmed_checkpoint", position=str(pos), error=str(resp)[:200])
            pos = Position(TRIM_HORIZON)
            self.position = pos
