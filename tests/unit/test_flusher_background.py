"""The batcher's flush stores in the background: the next batches are decoded, parsed and
rolled up while the sink stores the previous rows. Nothing is lost or stored twice, a
position is checkpointed only with its rows, and a flush that fails hands its rows back."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from dredge.batcher import StreamBatcher
from dredge.batcher.loop import batches_total
from dredge.enrich.rollup import Rolled
from dredge.errors import SinkError
from dredge.sinks.base import ShardCheckpoint
from dredge.sinks.duckdb import DuckDBSink
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import Position
from tests.unit.batching import LINE, batcher, open_store


class Owner:
    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, Position]] = []

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        self.checkpoints.append((shard_id, position))


class HeldSink:
    """The first store waits until released (and then fails, if told to); the others store."""

    def __init__(self, inner: DuckDBSink, fail_first: bool) -> None:
        self.inner, self.fail_first = inner, fail_first
        self.entered, self.release = threading.Event(), threading.Event()
        self.stored: list[dict[str, tuple[str, int]]] = []  # the sink's checkpoints after each
        self.calls = 0

    def store_batch(self, rows: list[Rolled], checkpoints: list[ShardCheckpoint]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(20)
            if self.fail_first:
                raise SinkError("injected: the store is down")
        self.inner.store_batch(rows, checkpoints)
        self.stored.append(self.inner.checkpoints("s"))


def _processed() -> float:
    return batches_total.labels("processed").value


def _run(tmp_path: Path, fail_first: bool) -> tuple[HeldSink, Owner, int, int]:
    db = open_store(tmp_path / "d.duckdb")
    sink, owner = HeldSink(db, fail_first), Owner()
    during: list[float] = []

    async def main() -> None:
        b = batcher(sink, owner)
        task = asyncio.create_task(b.run())
        # a first answer at the tip: flushed at once, and that store is held
        await b.put(ReadBatch("s", "a", 1, [LINE % 1], ["1"], behind_ms=0))
        assert await asyncio.to_thread(sink.entered.wait, 20)
        before = _processed()
        await b.put(ReadBatch("s", "a", 1, [LINE % 2], ["2"], behind_ms=5))
        await b.put(ReadBatch("s", "b", 1, [LINE % 4], ["7"], behind_ms=5))
        async with asyncio.timeout(20):  # processed while the first store waits
            while _processed() < before + 2:
                await asyncio.sleep(0.01)
        during.append(_processed() - before)
        sink.release.set()
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    total = db.query("SELECT sum(bytes) AS b, sum(flows) AS f FROM flows").to_pylist()[0]
    db.close()
    assert during == [2]
    return sink, owner, int(total["b"]), int(total["f"])


def test_the_next_batches_are_processed_while_the_sink_stores(tmp_path: Path) -> None:
    sink, owner, total_bytes, flows = _run(tmp_path, fail_first=False)
    assert (total_bytes, flows) == (7, 3)  # each batch once
    # the held store carried a's first batch only: its checkpoint, then the later ones
    assert sink.stored == [{"a": ("1", 0)}, {"a": ("2", 0), "b": ("7", 0)}]
    assert owner.checkpoints[0] == ("a", Position("SEQUENCE", "1", 0))
    assert set(owner.checkpoints[-2:]) == {("a", Position("SEQUENCE", "2", 0)),
                                            ("b", Position("SEQUENCE", "7", 0))}


def test_a_background_flush_that_fails_hands_its_rows_to_the_next(tmp_path: Path) -> None:
    sink, owner, total_bytes, flows = _run(tmp_path, fail_first=True)
    assert (total_bytes, flows) == (7, 3)  # a's first batch too, once
    assert sink.stored == [{"a": ("2", 0), "b": ("7", 0)}]
    assert ("a", Position("SEQUENCE", "1", 0)) not in owner.checkpoints  # never on its own
    assert set(owner.checkpoints) == {("a", Position("SEQUENCE", "2", 0)),
                                      ("b", Position("SEQUENCE", "7", 0))}


def test_batches_of_different_shards_are_processed_at_once_a_shard_s_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog's answers arrive together: two shards' batches run on two threads at once
    (both meet at a barrier), while a shard's own batches never overlap and keep their order."""
    db = open_store(tmp_path / "d.duckdb")
    owner = Owner()
    barrier = threading.Barrier(2, timeout=10)
    lock = threading.Lock()
    running: dict[str, int] = {}
    order: list[tuple[str, str]] = []
    met: list[bool] = []
    real = StreamBatcher._work

    def work(self: StreamBatcher, batch: ReadBatch, parser: object, pending: object) -> None:
        with lock:
            running[batch.shard_id] = running.get(batch.shard_id, 0) + 1
            assert running[batch.shard_id] == 1, "a shard's batches overlapped"
            order.append((batch.shard_id, batch.sequences[0]))
        if batch.sequences[0] == "1":  # the first batch of each shard waits for the other's
            barrier.wait()
            met.append(True)
        real(self, batch, parser, pending)  # type: ignore[arg-type]
        with lock:
            running[batch.shard_id] -= 1

    monkeypatch.setattr(StreamBatcher, "_work", work)

    async def main() -> None:
        b = batcher(db, owner)
        b._parallel = 2  # as on a 2-core machine, whatever this one has
        task = asyncio.create_task(b.run())
        for seq in ("1", "2", "3"):
            await b.put(ReadBatch("s", "a", 1, [LINE % 1], [seq]))
            await b.put(ReadBatch("s", "b", 1, [LINE % 10], [seq]))
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    total = db.query("SELECT sum(bytes) AS b FROM flows").to_pylist()[0]["b"]
    cps = db.checkpoints("s")
    db.close()
    assert met == [True, True]
    assert [s for k, s in order if k == "a"] == ["1", "2", "3"]
    assert [s for k, s in order if k == "b"] == ["1", "2", "3"]
    assert int(total) == 33
    assert cps == {"a": ("3", 0), "b": ("3", 0)}


def test_flush_rows_stores_a_backlog_while_it_is_read(tmp_path: Path) -> None:
    """With ``flush_rows`` reached, the rows go to the sink (in the background) without
    waiting for the interval; 0 waits for the interval (here: the final flush)."""
    counts = {}
    for flush_rows in (1, 0):
        db = open_store(tmp_path / f"d{flush_rows}.duckdb")
        sink = HeldSink(db, fail_first=False)
        sink.release.set()
        seen: list[int] = []

        async def main(sink: HeldSink, flush_rows: int, seen: list[int]) -> None:
            b = batcher(sink, Owner(), flush_rows=flush_rows)
            task = asyncio.create_task(b.run())
            for seq in range(1, 4):
                await b.put(ReadBatch("s", "a", 1, [LINE % seq], [str(seq)]))  # no behind_ms
                await asyncio.sleep(0.3)
                seen.append(len(sink.stored))
            await b.drain_and_stop()
            await task

        asyncio.run(main(sink, flush_rows, seen))
        total = db.query("SELECT sum(bytes) AS b FROM flows").to_pylist()[0]["b"]
        db.close()
        assert int(total) == 6
        counts[flush_rows] = seen
    assert counts[1] == [1, 2, 3]
    assert counts[0] == [0, 0, 0]
