"""The batcher flushes a shard that catches up at once (its answer reaches the tip after it was
a flush interval or more behind, or at its first answer), and only then: a shard that stays at
the tip, one that flickers a few ms behind it, or an emulator that does not say how far behind
a shard is, wait for the interval. Real DuckDB store; the interval is 30 s, so any store seen
within the test came from a catch-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dredge.enrich.rollup import Rolled
from dredge.sinks.duckdb import DuckDBSink
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import Position, ShardCheckpoint
from tests.unit.batching import LINE, batcher, open_store

QUIET_S = 0.4  # how long "no flush" is watched for


class CountingSink:
    def __init__(self, inner: DuckDBSink) -> None:
        self.inner = inner
        self.stored: list[list[str]] = []  # each store: the shards' positions it checkpointed

    def store_batch(self, rows: list[Rolled], checkpoints: list[ShardCheckpoint]) -> None:
        self.inner.store_batch(rows, checkpoints)
        self.stored.append(sorted(f"{c.shard_id}@{c.sequence}" for c in checkpoints))


class Owner:
    def __init__(self, reading: list[str] | None = None) -> None:
        self.checkpoints: list[tuple[str, Position]] = []
        if reading is not None:  # a consumer that says which shards it reads
            self.reading = lambda: reading

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        self.checkpoints.append((shard_id, position))


def answer(shard: str, seq: int, behind_ms: int | None) -> ReadBatch:
    return ReadBatch("s", shard, 1, [LINE % seq], [str(seq)], behind_ms=behind_ms)


async def _stores_after(sink: CountingSink, n: int) -> None:
    async with asyncio.timeout(10):
        while len(sink.stored) < n:
            await asyncio.sleep(0.01)


def _run(tmp_path: Path, steps: list[tuple[ReadBatch, int]],
         reading: list[str] | None = None) -> tuple[CountingSink, Owner, int]:
    """Put each answer, then wait for the number of stores it must leave (a catch-up flush
    is awaited; no new flush is watched for QUIET_S)."""
    db = open_store(tmp_path / "d.duckdb")
    sink = CountingSink(db)
    owner = Owner(reading)

    async def main() -> None:
        b = batcher(sink, owner)
        task = asyncio.create_task(b.run())
        for read, stores in steps:
            before = len(sink.stored)
            await b.put(read)
            if stores > before:
                await _stores_after(sink, stores)
            else:
                await asyncio.sleep(QUIET_S)
            assert len(sink.stored) == stores, (read, sink.stored)
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    total = db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py()
    db.close()
    return sink, owner, total


def test_a_first_answer_at_the_tip_and_a_caught_up_backlog_are_flushed_at_once(tmp_path: Path) -> None:
    sink, owner, total = _run(tmp_path, [
        (answer("a", 1, 0), 1),        # the first answer: flushed and checkpointed at once
        (answer("a", 2, 0), 1),        # still at the tip: waits for the interval
        (answer("a", 3, 90_000), 1),   # a burst: 90 s behind
        (answer("a", 4, 45_000), 1),
        (answer("a", 5, 0), 2),        # caught up: flushed at once
    ])
    assert sink.stored[:2] == [["a@1"], ["a@5"]]
    assert ("a", Position("SEQUENCE", "5", 0)) in owner.checkpoints
    # the final flush (drain) stores nothing new: every row is in, each once
    assert total == 1 + 2 + 3 + 4 + 5


def test_a_flicker_near_the_tip_and_an_emulator_without_behind_wait_for_the_interval(tmp_path: Path) -> None:
    sink, _, _ = _run(tmp_path, [
        (answer("a", 1, None), 0),     # no MillisBehindLatest: never early
        (answer("a", 2, 0), 0),        # the shard's answers said nothing before: not a catch-up
        (answer("b", 1, 0), 1),        # b's first answer
        (answer("b", 2, 800), 1),      # under one interval behind, then back
        (answer("b", 3, 0), 1),
    ])
    assert sink.stored[0] == ["a@2", "b@1"]  # one flush takes every shard's rows


def test_shards_starting_to_read_are_flushed_once_all_of_them_reached_the_tip(tmp_path: Path) -> None:
    """At start each shard's first answer comes while the others are still being read: one
    flush once every shard the consumer reads is at the tip, not one per shard."""
    sink, _, total = _run(tmp_path, [
        (answer("a", 1, 0), 0),        # a at the tip, b and c not answered yet
        (answer("b", 1, 20_000), 0),   # b behind
        (answer("c", 1, 0), 0),
        (answer("b", 2, 0), 1),        # b at the tip too (it was under an interval behind)
        (answer("a", 2, 0), 1),        # all at the tip since: the interval again
    ], reading=["a", "b", "c"])
    assert sink.stored[0] == ["a@1", "b@2", "c@1"]
    assert total == 1 + 1 + 1 + 2 + 2
