"""What the batcher's unit tests share: a flow-log line, a store, and a batcher on stream "s"
with an empty index (every address unknown) that flushes on its own only every 30 s, so that
each test decides when rows are stored (a catch-up, ``flush_rows``, the final flush)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dredge.batcher import StreamBatcher
from dredge.batcher.flusher import ShardOwner
from dredge.decode import DecodeConfig
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.index.loaders import load_index
from dredge.pipeline import PipelineConfig
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.snapshots import StaticSnapshots

# one v2 record; %d: its bytes
LINE = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 %d 1418530010 1418530070 ACCEPT OK"


def open_store(path: Path) -> DuckDBSink:
    db = DuckDBSink(DuckDBConfig(path=str(path)))
    db.open()
    return db


def batcher(sink: Any, owner: ShardOwner, **pipeline: Any) -> StreamBatcher:
    """A batcher storing into ``sink``, ``owner`` holding stream "s"'s leases; ``pipeline``:
    PipelineConfig settings besides ``flush_interval_s=30``. Made on the loop that runs it."""
    snap, _ = load_index([], [])
    b = StreamBatcher(sink, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                      PipelineConfig(**{"flush_interval_s": 30, **pipeline}))
    b.register("s", DEFAULT_FORMAT, owner)
    return b
