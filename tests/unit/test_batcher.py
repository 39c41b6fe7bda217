"""The stream batcher against a real DuckDB file whose store fails for a while: no checkpoint
passes unstored data, the daemon keeps going, and the rows land exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dredge.batcher import StreamBatcher
from dredge.config import PipelineConfig
from dredge.decode import DecodeConfig
from dredge.enrich.rollup import Rolled
from dredge.errors import LeaseLost, SinkError
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.index.loaders import load_index
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink, ShardCheckpoint
from dredge.snapshots import StaticSnapshots
from dredge.sources.kinesis.reader import Position, ReadBatch

LINE = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 %d 1418530010 1418530070 ACCEPT OK"


class FlakySink:
    """A real DuckDB sink that refuses the first ``failures`` stores."""

    def __init__(self, inner: DuckDBSink, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def store_batch(self, rows: list[Rolled], checkpoints: list[ShardCheckpoint]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise SinkError("disk unavailable (injected)")
        self.inner.store_batch(rows, checkpoints)


class Owner:
    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, Position]] = []
        self.lost: set[str] = set()

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return shard_id not in self.lost

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        if shard_id in self.lost:
            raise LeaseLost(shard_id)
        self.checkpoints.append((shard_id, position))


def batch(shard: str, seq: int, nbytes: int) -> ReadBatch:
    return ReadBatch("s", shard, 1, [LINE % nbytes], [str(seq)])


def test_sink_outage_no_checkpoint_then_exactly_once(tmp_path: Path) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    sink = FlakySink(db, failures=3)
    owner = Owner()

    async def main() -> None:
        b = StreamBatcher(sink, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, sink_retry_max_s=0.05))
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        await b.put(batch("shard-a", 1, 100))
        await b.put(batch("shard-a", 2, 200))
        async with asyncio.timeout(20):
            while sink.calls <= 3:
                assert not owner.checkpoints  # nothing stored: nothing checkpointed
                await asyncio.sleep(0.01)
            while not owner.checkpoints:
                await asyncio.sleep(0.01)
        await b.put(batch("shard-a", 3, 400))
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    assert sink.calls > 3
    assert db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py() == 700
    assert db.checkpoints("s") == {"shard-a": ("3", 0)}
    assert owner.checkpoints[-1] == ("shard-a", Position("SEQUENCE", "3", 0))
    db.close()


def test_lost_lease_drops_unstored_rows(tmp_path: Path) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=30))
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        await b.put(batch("kept", 1, 10))
        await b.put(batch("gone", 1, 1000))
        await asyncio.sleep(0.3)
        owner.lost.add("gone")
        b.discard("s", "gone")  # what the consumer does when the lease is lost
        await b.put(batch("gone", 2, 1000))  # read before the reader stopped: stale
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    assert db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py() == 10
    assert db.checkpoints("s") == {"kept": ("1", 0)}
    db.close()


def test_final_flush_failure_is_loud(tmp_path: Path) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    sink = FlakySink(db, failures=1000)
    owner = Owner()

    async def main() -> None:
        b = StreamBatcher(sink, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=30, shutdown_flush_attempts=2))
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 10))
        await b.drain_and_stop()
        await task

    with pytest.raises(SinkError, match="final flush failed"):
        asyncio.run(main())
    assert not owner.checkpoints
    db.close()
