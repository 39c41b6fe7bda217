"""A flush checkpoints every shard's lease at once, not one table round trip after another; a
lease lost or a write that fails on one shard leaves the others checkpointed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dredge.errors import CheckpointError, LeaseLost
from dredge.sinks.duckdb import DuckDBSink
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import Position
from tests.unit.batching import LINE, batcher, open_store


class SlowOwner:
    """Each lease write takes a while; counts how many are in flight at once."""

    def __init__(self, lost: str, failing: str) -> None:
        self.lost, self.failing = lost, failing
        self.in_flight = self.most = 0
        self.written: dict[str, Position] = {}

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.1)
            if shard_id == self.lost:
                raise LeaseLost(shard_id)
            if shard_id == self.failing:
                raise CheckpointError(f"{shard_id}: throttled (injected)")
            self.written[shard_id] = position
        finally:
            self.in_flight -= 1


def test_leases_are_checkpointed_together_and_one_failure_spares_the_rest(tmp_path: Path) -> None:
    db = open_store(tmp_path / "d.duckdb")
    owner = SlowOwner(lost="s2", failing="s3")

    async def main() -> None:
        b = batcher(db, owner)
        task = asyncio.create_task(b.run())
        for i in range(6):
            await b.put(ReadBatch("s", f"s{i}", 1, [LINE % (i + 1)], [str(10 + i)]))
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    db.close()
    # the final flush stores all six, then writes the six leases at once; the lost lease and
    # the failed write keep the other four from nothing
    assert owner.most == 6
    assert owner.written == {f"s{i}": Position("SEQUENCE", str(10 + i), 0) for i in (0, 1, 4, 5)}


class TimedOwner:
    """Lease writes that take ``seconds``; notes when each started and ended."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.log: list[tuple[str, str, float]] = []  # (event, shard, loop time)

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        loop = asyncio.get_running_loop()
        self.log.append(("start", shard_id, loop.time()))
        await asyncio.sleep(self.seconds)
        self.log.append(("end", shard_id, loop.time()))


class Stores:
    def __init__(self, inner: DuckDBSink, owner: TimedOwner) -> None:
        self.inner, self.owner = inner, owner
        self.leases_landed_before: list[int] = []  # per store: lease writes ended before it

    def store_batch(self, rows: list, checkpoints: list) -> None:  # type: ignore[type-arg]
        self.leases_landed_before.append(sum(e == "end" for e, _, _ in self.owner.log))
        self.inner.store_batch(rows, checkpoints)


def test_the_next_batches_are_stored_while_a_slow_lease_write_is_in_flight(tmp_path: Path) -> None:
    """A flush hands its lease writes to the background: the batcher reads, parses and stores
    the next shard's rows meanwhile; the next round of lease writes starts only once the
    first has landed (positions land in the order they were stored)."""
    db = open_store(tmp_path / "d.duckdb")
    owner = TimedOwner(seconds=2.0)
    sink = Stores(db, owner)

    async def main() -> None:
        b = batcher(sink, owner)
        task = asyncio.create_task(b.run())
        # first answers at the tip: each is flushed at once (a catch-up)
        await b.put(ReadBatch("s", "a", 1, [LINE % 1], ["1"], behind_ms=0))
        async with asyncio.timeout(10):
            while not owner.log:
                await asyncio.sleep(0.01)
        await b.put(ReadBatch("s", "b", 1, [LINE % 2], ["1"], behind_ms=0))
        async with asyncio.timeout(10):
            while len(sink.leases_landed_before) < 2:
                await asyncio.sleep(0.01)
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    total = db.query("SELECT sum(bytes) FROM flows").column(0)[0].as_py()
    db.close()
    assert total == 3
    assert sink.leases_landed_before[:2] == [0, 0]  # b stored while a's lease write was in flight
    starts = {s: t for e, s, t in owner.log if e == "start"}
    ends = {s: t for e, s, t in owner.log if e == "end"}
    assert set(ends) == {"a", "b"}
    assert starts["b"] >= ends["a"]  # the second round waited for the first
