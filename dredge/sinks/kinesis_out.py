"""The publisher: rolled-up rows to a Kinesis output stream with ``PutRecords``.

Rows become JSON records with :mod:`dredge.sinks.rowcodec`. ``PutRecords`` takes at most 500
records and 5 MiB; a partial failure (throttled or internal records) is retried for the failed
records only, with full-jitter backoff, a bounded number of times, then :class:`SinkError`.
Delivery is at least once: a call whose answer is lost may have been stored. Retrying one
logical publish (same ``token``) skips records acknowledged by an earlier attempt, which
removes the duplicates of the common failure (part of a flush stored, then the stream or
network failed).

The daemon wraps its store in :class:`dredge.sinks.publishing.PublishingSink` (publish, then
store + checkpoint).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from dredge.aws import RETRYABLE_CODES, Backoff, error_code, resolve_region
from dredge.enrich.rollup import Rolled
from dredge.errors import ConfigError, SinkError, SinkUnavailable
from dredge.settings import check_positive, check_url
from dredge.sinks.metrics import flush_seconds, requests_total, retries_total, rows_total
from dredge.sinks.rowcodec import MAX_KEY_CHARS, Packed, encode, pack
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

MAX_RECORDS = 500  # PutRecords: records per call
MAX_CALL_BYTES = 5 * 1024 * 1024  # PutRecords: data + partition keys per call
MAX_RECORD_BYTES = 1024 * 1024  # one record's data + partition key


@dataclass(frozen=True)
class KinesisOutConfig:
    """The output stream (``[sink.kinesis_out]`` when wired into the daemon's config)."""

    stream: str = "dredge-flows"
    region: str = ""  # empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str = ""  # empty: AWS (or AWS_ENDPOINT_URL); kinesis-local: http://127.0.0.1:14568
    max_records: int = MAX_RECORDS  # per PutRecords call
    # Rows of one app pair share a record, newline-separated, up to this size (0: one row per
    # record). Kinesis limits a shard to 1000 records/s and 1 MB/s: packed, the bytes count.
    pack_bytes: int = 64 * 1024
    max_attempts: int = 8  # per call, first try included; then SinkError
    backoff_base_s: float = 0.1  # first retry waits up to this (full jitter, doubling)
    backoff_max_s: float = 5.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0

    def validate(self) -> None:
        if not 1 <= len(self.stream) <= 128:
            raise ConfigError("stream", "a Kinesis stream name (1-128 characters)")
        if not 1 <= self.max_records <= MAX_RECORDS:
            raise ConfigError("max_records", f"must be in 1..{MAX_RECORDS}")
        if not 0 <= self.pack_bytes <= MAX_RECORD_BYTES - 4 * MAX_KEY_CHARS:
            raise ConfigError("pack_bytes", f"must be in 0..{MAX_RECORD_BYTES - 4 * MAX_KEY_CHARS}")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", "must be >= 1")
        if not 0 < self.backoff_base_s <= self.backoff_max_s:
            raise ConfigError("backoff_base_s", "must be > 0 and <= backoff_max_s")
        check_positive(self, "connect_timeout_s", "read_timeout_s")
        check_url("endpoint_url", self.endpoint_url)


class KinesisClient(Protocol):
    def put_records(self, **kwargs: Any) -> dict[str, Any]: ...


def make_client(config: KinesisOutConfig) -> KinesisClient:
    """A boto3 Kinesis client without botocore's own retries (the publisher retries)."""
    import boto3
    from botocore.config import Config

    client: KinesisClient = boto3.session.Session().client(
        "kinesis", region_name=resolve_region(config.region), endpoint_url=config.endpoint_url or None,
        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                      connect_timeout=config.connect_timeout_s, read_timeout=config.read_timeout_s,
                      max_pool_connections=4))
    return client


@dataclass
class PublishResult:
    rows: int = 0  # rows acknowledged by this call
    records: int = 0  # Kinesis records acknowledged by this call
    skipped: int = 0  # rows acknowledged by an earlier attempt of the same token
    calls: int = 0
    retried: int = 0  # records sent again after a partial failure
    seconds: float = 0.0


class KinesisPublisher:
    """PutRecords with bounded, jittered retries. Thread-safe (one publish at a time)."""

    name = "kinesis"

    def __init__(self, config: KinesisOutConfig, client: KinesisClient | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None
                 ) -> None:
        config.validate()
        self.config = config
        self._client = client
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        # The last publish with a token: (token, digest, records acknowledged).
        self._resume: tuple[str, bytes, np.ndarray] | None = None

    @property
    def client(self) -> KinesisClient:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def publish(self, rows: Rolled | pa.Table | Sequence[Rolled | pa.Table],
                token: str | None = None) -> PublishResult:
        """Put every row; SinkError if some could not be put after the retries.

        ``token`` names one logical publish (the daemon: the flush's shard positions). When
        the previous publish with this token and the same rows failed or was not confirmed,
        the records it got acknowledged are not sent again.
        """
        parts = [rows] if isinstance(rows, Rolled | pa.Table) else list(rows)
        lines: list[bytes] = []
        keys: list[str] = []
        for part in parts:
            d, k = encode(part)
            lines += d
            keys += k
        packed = pack(lines, keys, self.config.pack_bytes)
        with self._lock:
            return self._publish(packed, token)

    def _publish(self, packed: Packed, token: str | None) -> PublishResult:
        t0 = time.perf_counter()
        result = PublishResult()
        digest = _digest(packed.data, packed.keys) if token is not None else b""
        acked = np.zeros(len(packed.data), bool)
        if token is not None and self._resume is not None and self._resume[:2] == (token, digest):
            acked = self._resume[2].copy()
            result.skipped = int(packed.rows[acked].sum())
            if result.skipped:
                log.info("publish_resumed", stream=self.config.stream, skipped_rows=result.skipped,
                         rows=int(packed.rows.sum()))
        try:
            for batch in _batches(packed.data, packed.keys, np.flatnonzero(~acked),
                                  self.config.max_records):
                self._put_batch(packed, batch, acked, result)
        except SinkError:
            if token is not None:
                self._resume = (token, digest, acked)
            unsent = int(packed.rows[~acked].sum())
            rows_total.labels(self.name, "failed").inc(unsent)
            log.error("publish_failed", stream=self.config.stream, rows=int(packed.rows.sum()),
                      acknowledged=int(packed.rows[acked].sum()), unsent=unsent)
            raise
        # Kept until another token comes: a store failing after a complete publish is
        # retried with the same token, and nothing is sent twice.
        self._resume = (token, digest, acked) if token is not None else None
        result.seconds = time.perf_counter() - t0
        flush_seconds.labels(self.name).observe(result.seconds)
        return result

    def _put_batch(self, packed: Packed, batch: np.ndarray, acked: np.ndarray,
                   result: PublishResult) -> None:
        backoff = Backoff(self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
        todo = batch
        last_error = ""
        for attempt in range(self.config.max_attempts):
            if attempt:
                self._sleep(backoff.next_delay())
            records = [{"Data": packed.data[i], "PartitionKey": packed.keys[i]} for i in todo]
            result.calls += 1
            try:
                out = self.client.put_records(StreamName=self.config.stream, Records=records)
            except Exception as exc:  # botocore's errors: classify, never let one escape raw
                code = error_code(exc)  # None: a transport error, retried
                requests_total.labels(self.name, "failed").inc()
                last_error = f"{type(exc).__name__}: {exc}"[:300]
                if code is not None and code not in RETRYABLE_CODES:
                    raise SinkError(f"Kinesis stream {self.config.stream!r} refused PutRecords: "
                                    f"{last_error}") from exc
                retries_total.labels(self.name, "call").inc()
                log.warning("publish_retry", stream=self.config.stream, attempt=attempt + 1,
                            records=len(todo), error=last_error)
                continue
            entries = out.get("Records") or []
            failed_mask = np.array([bool(e.get("ErrorCode")) for e in entries], bool)
            done = todo[~failed_mask]
            acked[done] = True
            result.records += len(done)
            rows = int(packed.rows[done].sum())
            result.rows += rows
            rows_total.labels(self.name, "published").inc(rows)
            if not failed_mask.any():
                requests_total.labels(self.name, "ok").inc()
                return
            todo = todo[failed_mask]
            requests_total.labels(self.name, "partial").inc()
            retries_total.labels(self.name, "partial").inc()
            rows_total.labels(self.name, "retried").inc(int(packed.rows[todo].sum()))
            result.retried += len(todo)
            first = next(e for e in entries if e.get("ErrorCode"))
            last_error = f"{len(todo)} of {len(entries)} records: {first.get('ErrorCode')}"
            log.warning("publish_partial", stream=self.config.stream, attempt=attempt + 1,
                        failed=len(todo), records=len(entries), error_code=first.get("ErrorCode"))
        raise SinkUnavailable(f"Kinesis stream {self.config.stream!r}: {len(todo)} record(s) not stored "
                        f"after {self.config.max_attempts} attempts ({last_error})")


def _digest(data: list[bytes], keys: list[str]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for d, k in zip(data, keys, strict=True):
        h.update(len(d).to_bytes(4, "little"))
        h.update(d)
        h.update(k.encode())
    return h.digest()


def _batches(data: list[bytes], keys: list[str], indices: np.ndarray, max_records: int
             ) -> list[np.ndarray]:
    """Indices cut into PutRecords calls: <= max_records records and <= 5 MiB each."""
    out: list[np.ndarray] = []
    current: list[int] = []
    size = 0
    for i in indices.tolist():
        n = len(data[i]) + len(keys[i].encode())
        if n > MAX_RECORD_BYTES:
            raise SinkError(f"a rolled-up row of {n} bytes exceeds Kinesis's 1 MiB record limit")
        if current and (len(current) >= max_records or size + n > MAX_CALL_BYTES):
            out.append(np.asarray(current, np.int64))
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        out.append(np.asarray(current, np.int64))
    return out
