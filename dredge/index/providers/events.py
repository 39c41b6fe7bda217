"""Assignment events as a provider: a JSON-lines file that is appended to, or a Kinesis stream.

For container platforms whose task addresses never show up as instances. One event a line
(or a Kinesis record holding one or more lines)::

    {"ip": "10.0.3.7", "app": "checkout", "cluster": "checkout-prod", ..., "assigned_at": 1795564800}
    {"ip": "10.0.3.7", "unassigned_at": "2026-11-25T01:00:00Z"}

Times are epoch seconds or RFC 3339. Owner fields are those of the index (app, cluster,
account, region, az, vpc, subnet, type). Events may come late and out of order: each lands
in history at its own time (see :mod:`dredge.index.history`). A bad line is counted
(``dredge_index_events_total{outcome="invalid"}``) and skipped.

Positions (file inode and offset; per-shard sequence numbers) are saved with the index
state that holds the events read up to them, so a restart resumes where the saved history
ends: no gap, and re-reads collapse as duplicates.

A stream is read with the flow-log source's own shard reader and shard listing
(:mod:`dredge.sources.kinesis`): limits, backoff, expired iterators, trimmed positions and
the end of a closed shard are handled there, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from typing import Any

import orjson

from dredge.aws import resolve_region
from dredge.errors import SourceError
from dredge.index import metrics
from dredge.index.owners import Owner, owner_of
from dredge.index.providers.base import IndexFeed, PollingProvider, SourceSink
from dredge.index.providers.config import (
    EventFileConfig,
    EventsConfig,
    EventStreamConfig,
)
from dredge.sources.kinesis.config import KinesisConfig
from dredge.sources.kinesis.discovery import ShardCatalog, list_shards
from dredge.sources.kinesis.reader import ReadBatch, ShardReader
from dredge.sources.kinesis.shards import SEQUENCE, Position
from dredge.telemetry.logging import get_logger
from dredge.times import epoch_seconds

log = get_logger(__name__)
KIND = "events"


def _epoch(v: object) -> int:
    if isinstance(v, bool):
        raise ValueError("a boolean is not a time")
    return epoch_seconds(v)


def parse_events(lines: Iterable[bytes]) -> tuple[list[str], list[int], list[Owner | None], int]:
    """JSON lines -> (ips, times, owners or None for a release, bad lines)."""
    ips: list[str] = []
    times: list[int] = []
    owners: list[Owner | None] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            ip = rec["ip"]
            if not isinstance(ip, str):
                raise TypeError("ip")
            if rec.get("assigned_at") is not None:
                t, o = _epoch(rec["assigned_at"]), owner_of(rec)
            else:
                t, o = _epoch(rec["unassigned_at"]), None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError):
            bad += 1
            continue
        ips.append(ip)
        times.append(t)
        owners.append(o)
    return ips, times, owners, bad


def submit_lines(sink: SourceSink, lines: Iterable[bytes], cursor: Any) -> int:
    ips, times, owners, bad = parse_events(lines)
    if bad:
        metrics.events_total.labels(KIND, "invalid").inc(bad)
        log.warning("assignment_events_invalid", source=sink.source, count=bad)
    return sink.submit(ips, times, owners, cursor=cursor).accepted


# -- a JSON-lines file -----------------------------------------------------------------------


class _EventsProvider(PollingProvider):
    """One source of assignment events, ``events/<medium>/<file or stream>``."""

    name = KIND

    def __init__(self, config: EventsConfig, manager: IndexFeed, interval_s: float,
                 medium: str, what: str) -> None:
        config.validate()
        super().__init__(interval_s, f"{KIND}-{medium}")
        self.sink = manager.sink(f"events/{medium}/{what}", KIND)


class AssignmentFile(_EventsProvider):
    """Provider: follows a file that is appended to (``tail -F``: rotation and truncation
    start over at offset 0 of the new file)."""

    task_name = "tail"

    def __init__(self, config: EventFileConfig, manager: IndexFeed) -> None:
        super().__init__(config, manager, config.poll_interval_s, "file", config.path)
        self.config = config
        self._inode = -1
        self._offset = 0

    async def on_start(self) -> None:
        cur = self.sink.cursor()
        if isinstance(cur, dict):
            self._inode, self._offset = int(cur.get("inode", -1)), int(cur.get("offset", 0))
        elif self.config.start_at == "end":
            with contextlib.suppress(OSError):
                st = os.stat(self.config.path)
                self._inode, self._offset = st.st_ino, st.st_size

    async def first_poll(self) -> None:
        await asyncio.to_thread(self.read_once)

    async def poll(self) -> None:
        while await asyncio.to_thread(self.read_once) == self.config.max_read_bytes:
            pass  # more waiting: read on without sleeping

    def read_once(self) -> int:
        """Read complete lines appended since the last call (blocking). Returns bytes consumed."""
        path = self.config.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.sink.touch(error=f"{path} does not exist (yet)")
            return 0
        except OSError as exc:
            self.report_error(self.sink, exc)
            return 0
        if st.st_ino != self._inode or st.st_size < self._offset:
            if self._inode != -1:
                log.info("assignment_file_restarted", file=path, reason="rotated or truncated")
            self._inode, self._offset = st.st_ino, 0
        if st.st_size == self._offset:
            self.sink.touch()
            return 0
        try:
            with open(path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(min(st.st_size - self._offset, self.config.max_read_bytes))
        except OSError as exc:
            self.report_error(self.sink, exc)
            return 0
        end = data.rfind(b"\n") + 1
        if end == 0:
            if len(data) < self.config.max_read_bytes:
                self.sink.touch()
                return 0  # a line still being written
            end = len(data)  # one line longer than the read size: bad, skip it
        self._offset += end
        submit_lines(self.sink, data[:end].split(b"\n"),
                     {"inode": self._inode, "offset": self._offset})
        return end


# -- a Kinesis stream ------------------------------------------------------------------------


class AssignmentStream(_EventsProvider):
    """Provider: every shard of a Kinesis stream, one shard reader per shard.

    No leases: every worker reads every shard (events are few; each worker needs all of
    them for its own index). A poll is a shard discovery (every ``discover_interval_s``).
    A shard reader that stops on an error it does not retry is reported and started again
    from its position after a wait: the stream's events must keep coming."""

    task_name = "discover"

    def __init__(self, config: EventStreamConfig, manager: IndexFeed) -> None:
        super().__init__(config, manager, config.discover_interval_s, "kinesis", config.stream)
        self.config = config
        self._positions: dict[str, str] = {}
        self._readers: set[str] = set()
        self._catalog = ShardCatalog()
        self._client: Any = None
        self._client_cm: Any = None

    async def on_start(self) -> None:
        from aiobotocore.session import get_session

        cur = self.sink.cursor()
        if isinstance(cur, dict):
            self._positions = {str(k): str(v) for k, v in cur.items()}
        kwargs: dict[str, Any] = {"region_name": resolve_region(self.config.region)}
        if self.config.endpoint_url:
            kwargs["endpoint_url"] = self.config.endpoint_url
        self._client_cm = get_session().create_client("kinesis", **kwargs)
        self._client = await self._client_cm.__aenter__()

    async def on_stop(self) -> None:
        if self._client_cm is not None:
            cm, self._client_cm = self._client_cm, None
            await cm.__aexit__(None, None, None)

    async def poll(self) -> None:
        """Start a reader for every shard not read yet."""
        try:
            shards = await list_shards(self._client, self.config.stream)
        except SourceError as exc:
            self.report_error(self.sink, exc, "assignment_stream_discovery_failed",
                              stream=self.config.stream)
            return
        self._catalog.update(shards)
        self.sink.touch()
        for s in shards:
            if s.shard_id not in self._readers:
                self._readers.add(s.shard_id)
                self.spawn(self._read_shard(s.shard_id), f"shard-{s.shard_id}")

    def _start(self, shard: str) -> Position:
        seq = self._positions.get(shard)
        return Position(SEQUENCE, seq) if seq else Position(self.config.initial_position)

    async def _deliver(self, batch: ReadBatch) -> None:
        if batch.shard_end:
            log.info("assignment_stream_shard_closed", stream=self.config.stream,
                     shard_id=batch.shard_id)
            return
        self._positions[batch.shard_id] = batch.sequences[-1]
        lines = [ln for d in batch.data for ln in bytes(d).split(b"\n")]
        submit_lines(self.sink, lines, dict(self._positions))

    async def _read_shard(self, shard: str) -> None:
        poll = self.config.poll_interval_s
        limits = KinesisConfig(max_records=self.config.limit, idle_poll_interval_s=poll,
                               backoff_base_s=poll, backoff_max_s=max(30.0, poll))
        pos = self._start(shard)
        while True:
            reader = ShardReader(self._client, self.config.stream, shard, 0, pos,
                                 self._deliver, limits, self._catalog)
            try:
                await reader.run()
                return  # the shard is closed and read to its end
            except SourceError as exc:  # not retried by the reader (access denied, ...)
                self.report_error(self.sink, exc)
            pos = reader.position
            await asyncio.sleep(limits.backoff_max_s)
