"""The stream batcher against a real DuckDB file whose store fails for a while: no checkpoint
passes unstored data, the daemon keeps going, and the rows land exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from dredge.batcher import StreamBatcher
from dredge.decode import DecodeConfig
from dredge.enrich.rollup import Rolled
from dredge.errors import LeaseLost, OwnerIndexError, SinkError
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.index.loaders import load_index
from dredge.index.snapshot import IndexSnapshot
from dredge.pipeline import PipelineConfig
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.snapshots import StaticSnapshots
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import Position, ShardCheckpoint
from dredge.testing import FakeClock

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


async def until(cond: Callable[[], bool], clock: FakeClock, what: str, step: float = 0.01) -> None:
    """Let processing time pass in steps (flushes fire) until ``cond``."""
    async with asyncio.timeout(20):
        while not cond():
            await asyncio.sleep(0.01)
            clock.now += step
    assert cond(), what


async def tick(clock: FakeClock, seconds: float) -> None:
    for _ in range(int(seconds / 0.01)):
        await asyncio.sleep(0.01)
        clock.now += 0.01


def test_holdback_checkpoints_never_pass_held_batches(tmp_path: Path) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()
    clock = FakeClock()
    stored: list[dict[str, tuple[str, int]]] = []

    class Recording:
        def store_batch(self, rows: list[Rolled], checkpoints: list[ShardCheckpoint]) -> None:
            db.store_batch(rows, checkpoints)
            stored.append(db.checkpoints("s"))

    async def main() -> None:
        b = StreamBatcher(Recording(), DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, holdback_s=10), clock=clock)
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 1))
        await b.put(batch("a", 2, 2))
        await b.put(batch("gone", 1, 1000))
        await until(lambda: b.held_batches == 3, clock, "three batches held")
        clock.now += 4
        await tick(clock, 0.3)  # flushes: nothing is due
        assert not owner.checkpoints and not stored
        await b.put(batch("a", 3, 4))  # due 10 s after now (~1004.3)
        await b.put(batch("gone", 2, 1000))
        await until(lambda: b.held_batches == 5, clock, "five batches held")
        owner.lost.add("gone")
        b.discard("s", "gone")  # lease lost: its held batches go, never stored
        assert b.held_batches == 3
        clock.now = 1010.5  # a1, a2 due; a3 (put at ~1004.3) still held
        await until(lambda: bool(owner.checkpoints), clock, "a checkpoint after a1, a2 were stored")
        await tick(clock, 0.3)  # more flushes: still nothing past a2
        assert b.held_batches == 1
        await b.drain_and_stop()  # a3 is dropped, not stored: read again next run
        await task

    asyncio.run(main())
    assert owner.checkpoints == [("a", Position("SEQUENCE", "2", 0))]
    assert all(cp == {"a": ("2", 0)} for cp in stored)
    assert db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py() == 3
    assert db.checkpoints("s") == {"a": ("2", 0)}
    db.close()


def test_holdback_full_makes_readers_wait_and_releases_in_order(tmp_path: Path) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()
    clock = FakeClock()

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, holdback_s=10, holdback_max_rows=2,
                                         queue_batches=1), clock=clock)
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        for seq in (1, 2):
            await b.put(batch("a", seq, seq))
            clock.now += 1
        await b.put(batch("a", 3, 4))  # parsed, waits for room in the holdback
        await b.put(batch("a", 4, 8))  # in the queue (1)
        fifth = asyncio.create_task(b.put(batch("a", 5, 16)))  # the queue is full
        await until(lambda: b.held_batches == 2 and b._queue.full(), clock, "two held, two waiting")
        await tick(clock, 0.2)
        assert not fifth.done() and not owner.checkpoints  # backpressure reaches the reader
        # the waiting batches enter (and start their delay) as room is made
        await until(lambda: bool(owner.checkpoints) and owner.checkpoints[-1][1].sequence == "5",
                    clock, "all five stored", step=0.5)
        await fifth
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    seqs = [int(p.sequence or 0) for _, p in owner.checkpoints]
    assert seqs == sorted(seqs) and seqs[-1] == 5
    assert db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py() == 31
    db.close()


def test_index_failure_stops_the_batcher(tmp_path: Path) -> None:
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()

    class Broken:
        def current(self) -> IndexSnapshot:
            raise OwnerIndexError("the index stopped updating: provider crashed (injected)")

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), Broken(), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, holdback_s=0.5))
        b.register("s", DEFAULT_FORMAT, Owner())
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 1))
        async with asyncio.timeout(20):
            await task

    with pytest.raises(OwnerIndexError, match="injected"):
        asyncio.run(main())
    assert db.checkpoints("s") == {}
    db.close()


def test_a_batch_in_pieces_gives_what_it_gives_whole() -> None:
    from dredge.batcher.batches import Pending, pieces
    from dredge.decode import encode_cloudwatch, encode_kpl
    from dredge.flowlog.parser import FlowParser

    snap, _ = load_index([], [])
    cwl = encode_cloudwatch([LINE % i for i in range(40)] + [b"2 broken line"],
                            log_stream="eni-0abc-all", owner="1")
    kpl = encode_kpl([("a", LINE % 7), ("b", cwl), ("c", b"bad line\n" + LINE % 9)])
    data = [kpl, cwl, cwl[:-7], b"\n".join(LINE % i for i in range(5)), kpl, b"x y z", cwl]
    batch = ReadBatch("s", "shard-a", 1, data, [str(100 + i) for i in range(len(data))],
                      skip_through_subseq=1)
    assert [len(p.data) for p in pieces(batch, 1)] == [1] * len(data)
    assert [p.skip_through_subseq for p in pieces(batch, 1)] == [1] + [-1] * (len(data) - 1)
    assert len(list(pieces(batch))) == 1

    def run(piece_bytes: int) -> tuple[object, ...]:
        pending = Pending(1)
        counts = pending.add_batch(batch, FlowParser(DEFAULT_FORMAT), DecodeConfig(),
                                   StaticSnapshots(snap), 60, piece_bytes)
        (enricher,) = pending.enrichers.values()
        rows = sorted(map(str, enricher.rolled().materialize().to_pylist()))
        dead = sorted(pending.dead, key=str)  # the same letters; in record order when in pieces
        return counts, pending.position, pending.records, dead, rows

    whole = run(1 << 30)
    assert whole[1] == Position("SEQUENCE", "106", 0) and whole[2] == len(data)
    assert len(whole[3]) > 3 and whole[4]  # dead letters and rows to compare
    for piece_bytes in (1, 600, 5000):
        assert run(piece_bytes) == whole


def test_the_stream_rolls_up_with_its_ephemeral_from() -> None:
    from dredge.batcher.batches import Pending
    from dredge.flowlog.parser import FlowParser

    snap, _ = load_index([], [])
    batch = ReadBatch("s", "shard-a", 1, [b"\n".join(LINE % i for i in range(3))], ["100"])

    def ports(**kwargs: int) -> set[int | None]:
        pending = Pending(1)
        pending.add_batch(batch, FlowParser(DEFAULT_FORMAT), DecodeConfig(), StaticSnapshots(snap),
                          60, **kwargs)
        (enricher,) = pending.enrichers.values()
        return set(enricher.rolled().facts.column("port").to_pylist())

    assert ports() == {22}  # 20641 -> 22: ssh
    assert ports(ephemeral_from=20) == {0}  # both ports past 20: "ephemeral"
