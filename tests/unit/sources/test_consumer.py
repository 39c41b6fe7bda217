"""StreamConsumer against moto: leases taken, every shard read, checkpoints in the lease table,
the sink's later checkpoint wins on start, a stale tenure refused, leases released on stop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import boto3
import pytest

from dredge.errors import LeaseLost
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig
from dredge.sources.kinesis.consumer import StreamConsumer
from dredge.sources.kinesis.leases import Lease
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import SEQUENCE, Position
from dredge.testing import MotoServer

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Settings:
    kinesis: KinesisConfig = field(default_factory=lambda: KinesisConfig(
        idle_poll_interval_s=0.02, list_shards_interval_s=1.0, backoff_base_s=0.01,
        backoff_max_s=0.05))
    lease: LeaseConfig = field(default_factory=lambda: LeaseConfig(
        table=f"unit-{uuid.uuid4().hex[:8]}", failover_time_s=5.0, renew_interval_s=0.2,
        take_interval_s=0.1))


def _stream_with_records(moto: MotoServer, per_shard: int) -> tuple[str, dict[str, list[str]]]:
    name = f"cons-{uuid.uuid4().hex[:8]}"
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint)
    kin.create_stream(StreamName=name, ShardCount=2)
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    shards = kin.list_shards(StreamName=name)["Shards"]
    put: dict[str, list[str]] = {s["ShardId"]: [] for s in shards}
    for shard in shards:
        for i in range(per_shard):
            out = kin.put_record(StreamName=name, Data=f"{shard['ShardId']} {i}".encode(),
                                 PartitionKey="p", ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"])
            put[out["ShardId"]].append(out["SequenceNumber"])
    return name, put


def test_reads_every_shard_checkpoints_and_releases(moto: MotoServer) -> None:
    name, put = _stream_with_records(moto, 3)
    first, second = sorted(put)
    stored = {first: (put[first][0], 0)}  # this worker's sink already holds first's record 0
    got: dict[str, list[ReadBatch]] = {s: [] for s in put}
    discarded: list[tuple[str, str]] = []

    async def deliver(batch: ReadBatch) -> None:
        got[batch.shard_id].append(batch)

    async def stored_checkpoints(stream: str) -> dict[str, tuple[str, int]]:
        assert stream == name
        return stored

    async def main() -> tuple[list[Lease], list[Lease]]:
        stream = StreamConfig(name=name, endpoint_url=moto.endpoint, region="us-east-1")
        settings = Settings(lease=LeaseConfig(
            table=f"unit-{uuid.uuid4().hex[:8]}", endpoint_url=moto.endpoint, region="us-east-1",
            failover_time_s=5.0, renew_interval_s=0.2, take_interval_s=0.1))
        async with contextlib.AsyncExitStack() as stack:
            consumer = StreamConsumer(stream, settings, "worker-1", deliver,
                                      lambda s, shard: discarded.append((s, shard)),
                                      stored_checkpoints)
            await consumer.open(stack)
            task = asyncio.create_task(consumer.run())
            async with asyncio.timeout(60):
                while sum(len(b.sequences) for b in got[first]) < 2 or \
                        sum(len(b.sequences) for b in got[second]) < 3:
                    await asyncio.sleep(0.02)
            for shard_id, batches in got.items():
                last = batches[-1]
                assert consumer.is_current(shard_id, last.epoch)
                await consumer.commit_checkpoint(shard_id, last.epoch,
                                                 Position(SEQUENCE, last.sequences[-1]))
            with pytest.raises(LeaseLost):  # a batch of an earlier tenure
                await consumer.commit_checkpoint(first, got[first][-1].epoch + 100,
                                                 Position(SEQUENCE, put[first][-1]))
            held = await consumer.leases.list_leases()
            # nothing lost while running (after release, a last renewal may drop what it no
            # longer holds: harmless, the final flush is done by then)
            assert discarded == []
            await consumer.stop_reading()
            await consumer.release()
            await task
            return held, await consumer.leases.list_leases()

    held, released = asyncio.run(main())
    # the sink's checkpoint was later than the lease's TRIM_HORIZON: reading resumed after it
    assert [s for b in got[first] for s in b.sequences] == put[first][1:]
    assert [s for b in got[second] for s in b.sequences] == put[second]
    assert {lease.shard_id: (lease.owner, lease.checkpoint) for lease in held} == {
        first: ("worker-1", put[first][-1]), second: ("worker-1", put[second][-1])}
    assert {lease.shard_id: lease.owner for lease in released} == {first: None, second: None}


def test_consumer_needs_open_before_its_leases() -> None:
    consumer = StreamConsumer(StreamConfig(name="s"), Settings(), "w", _never, lambda s, h: None,
                              _nothing)
    assert consumer.name == "s" and not consumer.is_current("shardId-0", 1)
    with pytest.raises(Exception, match="consumer not started"):
        _ = consumer.leases


async def _never(batch: ReadBatch) -> None:
    raise AssertionError("nothing is read before open()")


async def _nothing(stream: str) -> dict[str, tuple[str, int]]:
    return {}
