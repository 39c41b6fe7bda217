"""Lease manager against a real DynamoDB API (moto in server mode): KCL's table layout,
balancing across workers, failover, checkpoints, release and shard lineage.

Expiry is driven by an injected clock shared by the workers, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.session import get_session

from dredge.errors import LeaseLost
from dredge.sources.kinesis.config import LeaseConfig
from dredge.sources.kinesis.leases import LeaseCoordinator
from dredge.sources.kinesis.shards import LATEST, SHARD_END, TRIM_HORIZON, ShardInfo
from dredge.testing import FakeClock, MotoServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SEQ = "49590338271490256608559692538361571095921575989136588898"


@contextlib.asynccontextmanager
async def dynamodb(moto: MotoServer) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        yield client


def config(**overrides: Any) -> LeaseConfig:
    cfg = LeaseConfig(table=f"leases-{uuid.uuid4().hex[:12]}", **overrides)
    cfg.validate()
    return cfg


def shards(n: int) -> list[ShardInfo]:
    return [ShardInfo(f"shardId-{i:012d}") for i in range(n)]


def run(moto: MotoServer, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        async with dynamodb(moto) as client:
            await body(client)

    asyncio.run(main())


async def round_of(workers: list[LeaseCoordinator], clock: FakeClock, step: float = 1.0) -> None:
    """Workers renew independently, then take one after another (each sees the others' takes)."""
    await asyncio.gather(*(w.renew() for w in workers))
    for w in workers:
        await w.take()
    clock.advance(step)


async def owners(manager: LeaseCoordinator) -> dict[str, str | None]:
    return {lease.shard_id: lease.owner for lease in await manager.list_leases()}


def loads(table: dict[str, str | None], workers: list[LeaseCoordinator]) -> list[int]:
    return [sum(o == w.worker_id for o in table.values()) for w in workers]


async def converge(workers: list[LeaseCoordinator], clock: FakeClock, rounds: int = 30) -> None:
    for _ in range(rounds):
        await round_of(workers, clock)
        # held() may still list a lease stolen since its owner's last renewal: confirm in the table.
        if [len(w.held()) for w in workers] == [4, 4, 4] and loads(
            await owners(workers[0]), workers
        ) == [4, 4, 4]:
            return
    raise AssertionError(f"no convergence: {loads(await owners(workers[0]), workers)}")


def test_table_and_items_use_kcl_names_and_types(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        cfg = config()
        a = LeaseCoordinator(client, cfg, "worker-a", clock=FakeClock())
        await a.ensure_table()
        await a.ensure_table()  # idempotent
        table = (await client.describe_table(TableName=cfg.table))["Table"]
        assert table["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]
        assert table["AttributeDefinitions"] == [
            {"AttributeName": "leaseKey", "AttributeType": "S"}
        ]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

        parent = ShardInfo(
            "shardId-000000000000", (), "0", "340282366920938463463374607431768211455"
        )
        child = ShardInfo(
            "shardId-000000000001",
            ("shardId-000000000000",),
            "0",
            "170141183460469231731687303715884105727",
        )
        await a.sync_shards([parent, child])
        await a.sync_shards([parent, child])  # existing leases are left alone
        assert await a.take() == {parent.shard_id, child.shard_id}
        await a.checkpoint(child.shard_id, SEQ, 2)

        key = {"leaseKey": {"S": child.shard_id}}
        item = (await client.get_item(TableName=cfg.table, Key=key, ConsistentRead=True))["Item"]
        assert item == {
            "leaseKey": {"S": "shardId-000000000001"},
            "leaseOwner": {"S": "worker-a"},
            "leaseCounter": {"N": "2"},  # 1 on take, 2 on checkpoint
            "checkpoint": {"S": SEQ},
            "checkpointSubSequenceNumber": {"N": "2"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
            "parentShardId": {"SS": ["shardId-000000000000"]},
            "startingHashKey": {"S": "0"},
            "endingHashKey": {"S": "170141183460469231731687303715884105727"},
        }
        key = {"leaseKey": {"S": parent.shard_id}}
        item = (await client.get_item(TableName=cfg.table, Key=key, ConsistentRead=True))["Item"]
        assert item["checkpoint"] == {"S": TRIM_HORIZON}
        assert item["childShardIds"] == {"SS": ["shardId-000000000001"]}
        assert "parentShardId" not in item
        assert await a.get_checkpoint(child.shard_id) == (SEQ, 2)
        assert await a.get_checkpoint("shardId-999") is None

    run(moto, body)


def test_three_workers_converge_to_four_each_and_stay(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        workers = [LeaseCoordinator(client, cfg, f"worker-{n}", clock=clock) for n in "abc"]
        await workers[0].ensure_table()
        await workers[0].sync_shards(shards(12))
        await converge(workers, clock)
        before = await owners(workers[0])
        for _ in range(3):
            await round_of(workers, clock)
        assert await owners(workers[0]) == before  # no thrashing once balanced
        held = [w.held() for w in workers]
        assert [len(h) for h in held] == [4, 4, 4]
        assert set().union(*held) == set(before)
        for w in workers:
            assert all(before[s] == w.worker_id for s in w.held())

    run(moto, body)


def test_silent_worker_loses_its_leases_after_failover(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config(max_leases_to_steal_at_once=3)
        a, b, c = (LeaseCoordinator(client, cfg, f"worker-{n}", clock=clock) for n in "abc")
        await a.ensure_table()
        await a.sync_shards(shards(12))
        await converge([a, b, c], clock)
        lost = c.held()

        # c stops renewing; a and b keep their 3 s rhythm, less than the 10 s failover.
        for _ in range(3):
            await round_of([a, b], clock, step=3.0)
        assert not (a.held() | b.held()) & lost  # 9 s: not expired yet
        for _ in range(3):
            await round_of([a, b], clock, step=3.0)
        table = await owners(a)
        assert sorted(loads(table, [a, b, c])) == [0, 6, 6]
        assert a.held() | b.held() == set(table)

        switched = [lease for lease in await a.list_leases() if lease.shard_id in lost]
        assert all(lease.owner_switches >= 1 for lease in switched)

        # c wakes up: by its own clock its leases expired, so it stopped reporting them and
        # refuses to checkpoint or renew them, without writing anything.
        assert c.held() == set()
        victim = sorted(lost)[0]
        with pytest.raises(LeaseLost):
            await c.checkpoint(victim, SEQ)
        assert await c.get_checkpoint(victim) == (TRIM_HORIZON, 0)
        assert await c.renew() == set()

    run(moto, body)


def test_checkpoint_after_a_steal_raises_lease_lost(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        a = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        b = LeaseCoordinator(client, cfg, "worker-b", clock=clock)
        await a.ensure_table()
        await a.sync_shards(shards(2))
        assert len(await a.take()) == 2
        (stolen,) = await b.take()  # a holds 2 > target 1: b steals one at once
        assert a.held() == {"shardId-000000000000", "shardId-000000000001"}  # a has not noticed
        with pytest.raises(LeaseLost):
            await a.checkpoint(stolen, SEQ)  # refused by the table's condition
        assert stolen not in a.held()
        await b.checkpoint(stolen, SEQ)
        (kept,) = a.held()
        assert await a.renew() == {kept}
        lease = {lease.shard_id: lease for lease in await a.list_leases()}[stolen]
        assert (lease.owner, lease.checkpoint, lease.owner_switches) == ("worker-b", SEQ, 0)

    run(moto, body)


def test_renew_and_checkpoint_interleaved_never_lose_the_lease(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        a = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        await a.ensure_table()
        await a.sync_shards(shards(2))
        await a.take()
        for i in range(8):
            await asyncio.gather(a.renew(), *(a.checkpoint(s, str(1000 + i)) for s in a.held()))
        assert len(a.held()) == 2
        assert {lease.checkpoint for lease in await a.list_leases()} == {"1007"}

    run(moto, body)


def test_release_lets_another_worker_take_at_once(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        a = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        b = LeaseCoordinator(client, cfg, "worker-b", clock=clock)
        await a.ensure_table()
        await a.sync_shards(shards(1))
        assert await a.take() == {"shardId-000000000000"}
        assert await b.take() == set()  # one lease, two workers: b does not steal it
        await a.checkpoint("shardId-000000000000", SEQ)
        await a.release("shardId-000000000000")
        await a.release("shardId-000000000000")  # idempotent
        assert a.held() == set()
        lease = (await a.list_leases())[0]
        assert lease.owner is None
        assert await b.take() == {"shardId-000000000000"}  # no clock advance needed
        lease = (await b.list_leases())[0]
        assert (lease.owner, lease.owner_switches, lease.checkpoint) == ("worker-b", 0, SEQ)
        with pytest.raises(LeaseLost):
            await a.checkpoint("shardId-000000000000", SEQ)

    run(moto, body)


def test_restarted_worker_adopts_its_own_rows(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        first = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        await first.ensure_table()
        await first.sync_shards(shards(3))
        await first.take()
        again = LeaseCoordinator(client, cfg, "worker-a", clock=clock)  # same id, new process
        assert await again.take() == set(first.held())

    run(moto, body)


def test_children_wait_for_parents_to_reach_shard_end(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        a = LeaseCoordinator(client, cfg, "worker-a", initial_position=LATEST, clock=clock)
        await a.ensure_table()
        p0, p1 = ShardInfo("shardId-000000000000"), ShardInfo("shardId-000000000001")
        await a.sync_shards([p0, p1])
        # Later discovery: p0 split into c2 and c3; c3 and p1 merged into m4.
        c2 = ShardInfo("shardId-000000000002", (p0.shard_id,))
        c3 = ShardInfo("shardId-000000000003", (p0.shard_id,))
        m4 = ShardInfo("shardId-000000000004", (c3.shard_id, p1.shard_id))
        await a.sync_shards([p0, p1, c2, c3, m4])
        leases = {lease.shard_id: lease for lease in await a.list_leases()}
        assert leases[p0.shard_id].checkpoint == LATEST
        assert leases[p0.shard_id].child_shard_ids == {c2.shard_id, c3.shard_id}
        assert leases[c2.shard_id].checkpoint == TRIM_HORIZON  # never skip what follows a parent
        assert leases[m4.shard_id].parent_shard_ids == {c3.shard_id, p1.shard_id}

        assert await a.take() == set(leases)
        view = list(leases.values())
        assert a.is_ready(p0.shard_id, view)
        assert not a.is_ready(c2.shard_id, view)
        await a.checkpoint(p0.shard_id, SHARD_END)
        view = await a.list_leases()
        assert a.is_ready(c2.shard_id, view) and a.is_ready(c3.shard_id, view)
        assert not a.is_ready(m4.shard_id, view)
        await a.checkpoint(c3.shard_id, SHARD_END)
        assert not a.is_ready(m4.shard_id, await a.list_leases())  # p1 still open
        await a.checkpoint(p1.shard_id, SHARD_END)
        assert a.is_ready(m4.shard_id, await a.list_leases())

    run(moto, body)


def test_first_sync_starts_every_shard_at_the_initial_position(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        a = LeaseCoordinator(client, config(), "worker-a", initial_position=LATEST,
                             clock=FakeClock())
        await a.ensure_table()
        parent = ShardInfo("shardId-000000000000")
        await a.sync_shards([parent, ShardInfo("shardId-000000000001", (parent.shard_id,))])
        assert {lease.checkpoint for lease in await a.list_leases()} == {LATEST}

    run(moto, body)


def test_max_leases_per_worker_leaves_the_rest(moto: MotoServer) -> None:
    async def body(client: Any) -> None:
        clock = FakeClock()
        cfg = dataclasses.replace(config(), max_leases_per_worker=2)
        a = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        await a.ensure_table()
        await a.sync_shards(shards(5))
        assert len(await a.take()) == 2
        assert await a.take() == set()

    run(moto, body)


def test_finished_leases_are_cleaned_up_and_never_leased_again(moto: MotoServer) -> None:
    """KCL's lease cleanup: a parent's lease goes once all its children have started, a
    trimmed shard's once it is no longer listed; later syncs with the same listing do not
    create them again (a new lease would read the finished shard once more)."""

    async def body(client: Any) -> None:
        a = LeaseCoordinator(client, config(), "worker-a", clock=FakeClock())
        await a.ensure_table()
        p0, p1 = ShardInfo("shardId-000000000000"), ShardInfo("shardId-000000000001")
        c2 = ShardInfo("shardId-000000000002", (p0.shard_id,))
        c3 = ShardInfo("shardId-000000000003", (p0.shard_id,))
        m4 = ShardInfo("shardId-000000000004", (c3.shard_id, p1.shard_id))
        listing = [m4, c3, c2, p1, p0]  # children first: leases are still created parents first
        await a.sync_shards(listing)
        assert await a.take() == {s.shard_id for s in listing}

        async def table() -> dict[str, str]:
            return {lease.shard_id: lease.checkpoint for lease in await a.list_leases()}

        await a.checkpoint(p0.shard_id, SHARD_END)
        await a.checkpoint(c2.shard_id, SEQ)
        assert await a.clean_finished(s.shard_id for s in listing) == []  # c3 not started
        await a.checkpoint(c3.shard_id, SEQ)
        assert await a.clean_finished(s.shard_id for s in listing) == [p0.shard_id]
        assert p0.shard_id not in await table()
        assert p0.shard_id not in a.held()
        # the same listing again: p0 stays without a lease; its children read on
        await a.sync_shards(listing)
        assert p0.shard_id not in await table()
        assert a.is_ready(c2.shard_id, await a.list_leases())
        # a second worker starting now does not resurrect it either
        b = LeaseCoordinator(client, a._config, "worker-b", clock=FakeClock())
        await b.sync_shards(listing)
        assert p0.shard_id not in await table()

        # c3 and p1 end, m4 starts: both go
        await a.checkpoint(c3.shard_id, SHARD_END)
        await a.checkpoint(p1.shard_id, SHARD_END)
        assert a.is_ready(m4.shard_id, await a.list_leases())
        assert await a.clean_finished(s.shard_id for s in listing) == []  # m4 not started
        await a.checkpoint(m4.shard_id, SEQ)
        assert await a.clean_finished(s.shard_id for s in listing) == sorted([c3.shard_id, p1.shard_id])
        await a.sync_shards(listing)
        assert await table() == {c2.shard_id: SEQ, m4.shard_id: SEQ}

        # c2 ends without children (the stream shrank) and is later trimmed from the listing
        await a.checkpoint(c2.shard_id, SHARD_END)
        assert await a.clean_finished(s.shard_id for s in listing) == []
        assert await a.clean_finished([m4.shard_id]) == [c2.shard_id]
        assert await table() == {m4.shard_id: SEQ}

    run(moto, body)
