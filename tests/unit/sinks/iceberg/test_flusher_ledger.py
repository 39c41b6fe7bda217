"""The stream batcher with the Iceberg ledger (real DuckDB file, real SQL catalog): the local
store keeps its fast flushes, lease checkpoints wait for the ledger's commit, a failing ledger
holds the checkpoints and loses nothing, a stop commits what is buffered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.compute as pc

from dredge.batcher import StreamBatcher
from dredge.decode import DecodeConfig
from dredge.errors import LeaseLost
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.index.loaders import load_index
from dredge.pipeline import PipelineConfig
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.ledger import IcebergLedger
from dredge.sinks.iceberg.positions import committed_positions
from dredge.sinks.iceberg.table import open_table
from dredge.snapshots import StaticSnapshots
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import Position

LINE = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 %d 1418530010 1418530070 ACCEPT OK"


class Owner:
    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, Position]] = []
        self.restarted: list[str] = []

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Position) -> None:
        if shard_id in self.restarted:
            raise LeaseLost(shard_id)
        self.checkpoints.append((shard_id, position))

    async def restart(self, shard_id: str, epoch: int, why: str) -> None:
        self.restarted.append(shard_id)


def batch(shard: str, seq: int, nbytes: int) -> ReadBatch:
    return ReadBatch("s", shard, 1, [LINE % nbytes], [str(seq)])


def ledger_bytes(config: IcebergConfig) -> int:
    return int(pc.sum(open_table(config).scan().to_arrow().column("bytes")).as_py() or 0)


def test_checkpoints_follow_the_ledger_not_the_local_store(tmp_path: Path, iceberg_config: IcebergConfig) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()
    cfg = IcebergConfig(catalog=iceberg_config.catalog, commit_interval_s=3600)  # only at stop
    ledger = IcebergLedger(cfg, "w1")
    ledger.expect(("s", "a"), 1, None)

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05), ledger=ledger)
        b.register("s", DEFAULT_FORMAT, owner)
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 100))
        await b.put(batch("a", 2, 200))
        async with asyncio.timeout(20):
            while db.checkpoints("s") != {"a": ("2", 0)}:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # more local flushes
        assert not owner.checkpoints  # stored locally, not in the ledger: the lease stays
        assert ledger.rows >= 1  # one rolled-up row per local flush, waiting
        await b.drain_and_stop()  # the final commit, then the lease
        await task

    asyncio.run(main())
    assert owner.checkpoints == [("a", Position("SEQUENCE", "2", 0))]
    assert ledger_bytes(cfg) == 300
    assert committed_positions(open_table(cfg)) == {("s", "a"): ("2", 0)}
    db.close()


def test_ledger_outage_holds_checkpoints_then_commits_once(tmp_path: Path, iceberg_config: IcebergConfig) -> None:
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()
    cfg = IcebergConfig(catalog=iceberg_config.catalog, commit_interval_s=0.05)
    ledger = IcebergLedger(cfg, "w1")
    ledger.open()
    ledger.expect(("s", "a"), 1, None)
    catalog = tmp_path / "catalog.db"

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, sink_retry_max_s=0.1), ledger=ledger)
        b.register("s", DEFAULT_FORMAT, owner)
        catalog.rename(tmp_path / "away.db")  # the catalog is gone
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 100))
        async with asyncio.timeout(20):
            while db.checkpoints("s") != {"a": ("1", 0)}:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # commits fail and are retried; the daemon goes on
        assert not owner.checkpoints and ledger.rows == 1
        (tmp_path / "away.db").replace(catalog)
        async with asyncio.timeout(20):
            while not owner.checkpoints:
                await asyncio.sleep(0.02)
        await b.put(batch("a", 2, 20))
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    assert owner.checkpoints[-1] == ("a", Position("SEQUENCE", "2", 0))
    assert ledger_bytes(cfg) == 120
    db.close()


def test_full_ledger_buffer_holds_the_pipeline(tmp_path: Path, iceberg_config: IcebergConfig) -> None:
    """Table unreachable and the buffer past max_buffered_rows: no more local flushes (the
    batcher takes no batches: readers wait), nothing lost once the table is back."""
    snap, _ = load_index([], [])
    db = DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb")))
    db.open()
    owner = Owner()
    cfg = IcebergConfig(catalog=iceberg_config.catalog, commit_interval_s=0.05, max_buffered_rows=1)
    ledger = IcebergLedger(cfg, "w1")
    ledger.open()
    ledger.expect(("s", "a"), 1, None)
    catalog = tmp_path / "catalog.db"

    async def main() -> None:
        b = StreamBatcher(db, DeadLetters(None), StaticSnapshots(snap), DecodeConfig(),
                          PipelineConfig(flush_interval_s=0.05, sink_retry_max_s=0.1, queue_batches=1),
                          ledger=ledger)
        b.register("s", DEFAULT_FORMAT, owner)
        catalog.rename(tmp_path / "away.db")
        task = asyncio.create_task(b.run())
        await b.put(batch("a", 1, 100))
        async with asyncio.timeout(20):
            while db.checkpoints("s") != {"a": ("1", 0)}:
                await asyncio.sleep(0.02)
        for seq in range(2, 5):
            await b.put(batch("a", seq, 1))
        await asyncio.sleep(0.6)
        assert db.checkpoints("s") == {"a": ("1", 0)}  # held: nothing more taken in
        assert ledger.rows == 1 and not owner.checkpoints
        (tmp_path / "away.db").replace(catalog)
        await b.drain_and_stop()
        await task

    asyncio.run(main())
    assert owner.checkpoints[-1] == ("a", Position("SEQUENCE", "4", 0))
    assert ledger_bytes(cfg) == 103
    db.close()
