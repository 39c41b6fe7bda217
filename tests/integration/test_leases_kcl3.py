"""A lease table shared with (or migrated by) a Kinesis Client Library 3.x application, on a
real DynamoDB API (moto in server mode): KCL 3.x's own items (its migration state
``Migration3.0`` and workers' metric stats, each with an ``entityType``) are neither counted
when sizing each worker's share, nor taken, nor changed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dredge.sources.kinesis.leases import LeaseCoordinator
from dredge.sources.kinesis.leases.item import is_lease
from dredge.testing import FakeClock, MotoServer
from tests.integration.test_leases import config, loads, owners, round_of, run, shards

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# As KCL 3.x writes them (attribute names from its coordinator and worker-metrics code).
FOREIGN: list[dict[str, Any]] = [
    {"leaseKey": {"S": "Migration3.0"}, "entityType": {"S": "MIGRATION"},
     "cv": {"S": "CLIENT_VERSION_3X"}, "mb": {"S": "kcl-worker-1"}, "mts": {"N": "1764547200000"},
     "h": {"L": [{"M": {"cv": {"S": "CLIENT_VERSION_3X_WITH_ROLLBACK"},
                        "mts": {"N": "1764540000000"}}}]}},
    {"leaseKey": {"S": "kcl-worker-1"}, "entityType": {"S": "WORKER_METRICS_STATS"},
     "lut": {"N": "1764547200"}, "sts": {"M": {"CPU": {"L": [{"N": "41.5"}, {"N": "38.0"}]}}},
     "opr": {"M": {"CPU": {"N": "1"}}}, "leaseCounter": {"N": "17"}},
    # an item of the same family without the marker: no lease has no counter or checkpoint
    {"leaseKey": {"S": "kcl-worker-2"}, "lut": {"N": "1764547201"}},
]


def test_foreign_items_are_recognized() -> None:
    assert not any(is_lease(item) for item in FOREIGN)
    lease = {"leaseKey": {"S": "shardId-000000000000"}, "leaseCounter": {"N": "0"},
             "checkpoint": {"S": "TRIM_HORIZON"}}
    assert is_lease(lease)


async def table_items(client: Any, table: str) -> dict[str, dict[str, Any]]:
    items = (await client.scan(TableName=table, ConsistentRead=True))["Items"]
    return {item["leaseKey"]["S"]: item for item in items}


def logged(caplog: pytest.LogCaptureFixture) -> set[tuple[int, int]]:
    """(target, workers) the takers logged with their takes since the last clear."""
    return {(r.ctx["target"], r.ctx["workers"]) for r in caplog.records  # type: ignore[attr-defined]
            if r.getMessage() in ("lease_taken", "lease_stolen")}


def test_kcl3_items_do_not_tilt_the_balance_and_stay_untouched(
        moto: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dredge")

    async def body(client: Any) -> None:
        clock, cfg = FakeClock(), config()
        a = LeaseCoordinator(client, cfg, "worker-a", clock=clock)
        await a.ensure_table()
        for item in FOREIGN:
            await client.put_item(TableName=cfg.table, Item=item)
        await a.sync_shards(shards(6))
        leases = await a.list_leases()
        assert sorted(lease.shard_id for lease in leases) == [s.shard_id for s in shards(6)]

        # alone: all six shards, and its share is sized on six leases, not nine
        caplog.clear()
        assert await a.take() == {s.shard_id for s in shards(6)}
        assert logged(caplog) == {(6, 1)}  # with the foreign items counted: (9, 1)
        caplog.clear()
        # a second worker: three each (with nine items counted it would aim at five)
        b = LeaseCoordinator(client, cfg, "worker-b", clock=clock)
        workers = [a, b]
        for _ in range(20):
            await round_of(workers, clock)
            if loads(await owners(a), workers) == [3, 3]:
                break
        assert loads(await owners(a), workers) == [3, 3]
        assert logged(caplog) == {(3, 2)}  # b stole towards 3 (with nine items: 5)
        for w in workers:  # held() may list a lease stolen since its last renewal: renew first
            await w.renew()
        for w in workers:
            await w.checkpoint(sorted(w.held())[0], "49590338271490256608559692538361571095921575989136588898")
        await a.sync_shards(shards(6))
        assert await a.clean_finished([s.shard_id for s in shards(6)]) == []
        await a.release_all()

        items = await table_items(client, cfg.table)
        for item in FOREIGN:  # attribute for attribute as written
            assert items[item["leaseKey"]["S"]] == item
        assert len(items) == 6 + len(FOREIGN)

    run(moto, body)
