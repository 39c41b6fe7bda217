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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from dredge.errors import ConfigError
from dredge.index import metrics
from dredge.index.live import IndexManager, SourceSink
from dredge.index.owners import Owner, owner_of
from dredge.index.tasks import PollingProvider
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)
KIND = "events"


def _epoch(v: object) -> int:
    if isinstance(v, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(v, int | float):
        return int(v)
    return int(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp())


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


@dataclass(frozen=True)
class EventFileConfig:
    path: str = ""
    poll_interval_s: float = 1.0
    # with no saved position: read the file from its beginning, or only what is appended
    start_at: str = "beginning"
    max_read_bytes: int = 8 << 20

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("path", "give the JSON-lines file to follow")
        if not self.poll_interval_s > 0:
            raise ConfigError("poll_interval_s", "must be > 0")
        if self.start_at not in ("beginning", "end"):
            raise ConfigError("start_at", "beginning or end")
        if self.max_read_bytes < 4096:
            raise ConfigError("max_read_bytes", "must be >= 4096")


class AssignmentFile(PollingProvider):
    """Provider: follows a file that is appended to (``tail -F``: rotation and truncation
    start over at offset 0 of the new file)."""

    name = KIND
    task_name = "tail"

    def __init__(self, config: EventFileConfig, manager: IndexManager) -> None:
        config.validate()
        super().__init__(config.poll_interval_s, f"{KIND}-file")
        self.config = config
        self.sink = manager.sink(f"events/file/{config.path}", KIND)
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


@dataclass(frozen=True)
class EventStreamConfig:
    stream: str = ""
    region: str = "us-east-1"
    endpoint_url: str = ""  # "" = the AWS default (or AWS_ENDPOINT_URL)
    # with no saved position for a shard
    initial_position: str = "TRIM_HORIZON"
    poll_interval_s: float = 1.0
    discover_interval_s: float = 30.0
    limit: int = 1000

    def validate(self) -> None:
        if not self.stream:
            raise ConfigError("stream", "give the Kinesis stream of assignment events")
        if self.initial_position not in ("TRIM_HORIZON", "LATEST"):
            raise ConfigError("initial_position", "TRIM_HORIZON or LATEST")
        if not self.poll_interval_s > 0:
            raise ConfigError("poll_interval_s", "must be > 0")
        if not self.discover_interval_s > 0:
            raise ConfigError("discover_interval_s", "must be > 0")
        if not 1 <= self.limit <= 10_000:
            raise ConfigError("limit", "between 1 and 10000")


class AssignmentStream(PollingProvider):
    """Provider: every shard of a Kinesis stream, one GetRecords loop per shard.

    No leases: every worker reads every shard (events are few; each worker needs all of
    them for its own index). A poll is a shard discovery (every ``discover_interval_s``)."""

    name = KIND
    task_name = "discover"

    def __init__(self, config: EventStreamConfig, manager: IndexManager) -> None:
        config.validate()
        super().__init__(config.discover_interval_s, f"{KIND}-kinesis")
        self.config = config
        self.sink = manager.sink(f"events/kinesis/{config.stream}", KIND)
        self._positions: dict[str, str] = {}
        self._readers: set[str] = set()
        self._client: Any = None
        self._client_cm: Any = None

    async def on_start(self) -> None:
        from aiobotocore.session import get_session

        cur = self.sink.cursor()
        if isinstance(cur, dict):
            self._positions = {str(k): str(v) for k, v in cur.items()}
        kwargs: dict[str, Any] = {"region_name": self.config.region}
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
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            shards = await self._list_shards()
        except (BotoCoreError, ClientError) as exc:
            self.report_error(self.sink, exc, "assignment_stream_discovery_failed",
                              stream=self.config.stream)
            return
        for sid in shards:
            if sid not in self._readers:
                self._readers.add(sid)
                self.spawn(self._read_shard(sid), f"shard-{sid}")

    async def _list_shards(self) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.config.stream}
        while True:
            resp = await self._client.list_shards(**kwargs)
            out += [s["ShardId"] for s in resp.get("Shards", [])]
            token = resp.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    async def _iterator(self, shard: str) -> str:
        args: dict[str, Any] = {"StreamName": self.config.stream, "ShardId": shard}
        pos = self._positions.get(shard)
        if pos:
            args |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": pos}
        else:
            args["ShardIteratorType"] = self.config.initial_position
        resp = await self._client.get_shard_iterator(**args)
        return str(resp["ShardIterator"])

    async def _read_shard(self, shard: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        it: str | None = None
        backoff = self.config.poll_interval_s
        while True:
            try:
                if it is None:
                    it = await self._iterator(shard)
                resp = await self._client.get_records(ShardIterator=it, Limit=self.config.limit)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":
                    it = None
                    continue
                self.report_error(self.sink, exc)
                it = None if code != "ProvisionedThroughputExceededException" else it
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except BotoCoreError as exc:
                self.report_error(self.sink, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.config.poll_interval_s
            records = resp.get("Records", [])
            if records:
                self._positions[shard] = str(records[-1]["SequenceNumber"])
                lines = [ln for r in records for ln in bytes(r["Data"]).split(b"\n")]
                submit_lines(self.sink, lines, dict(self._positions))
            else:
                self.sink.touch()
            it = resp.get("NextShardIterator")
            if it is None:
                log.info("assignment_stream_shard_closed", stream=self.config.stream, shard_id=shard)
                return
            if not records or resp.get("MillisBehindLatest", 0) == 0:
                await asyncio.sleep(self.config.poll_interval_s)
