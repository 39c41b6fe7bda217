"""LeaseTable against moto: the one conditional write (put, update, delete) answers True, False
or raises CheckpointError; reads are the items as written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.session import get_session

from dredge.errors import CheckpointError
from dredge.sources.kinesis.leases import Lease, LeaseTable
from dredge.testing import MotoServer


def run(moto: MotoServer, body: Callable[[LeaseTable], Awaitable[None]]) -> None:
    async def main() -> None:
        async with get_session().create_client("dynamodb", region_name="us-east-1",
                                               endpoint_url=moto.endpoint) as client:
            table = LeaseTable(client, f"unit-{uuid.uuid4().hex[:10]}")
            await table.ensure_table()
            await body(table)

    asyncio.run(main())


def test_conditional_writes(moto: MotoServer) -> None:
    async def body(table: LeaseTable) -> None:
        lease = Lease("s1", None, 0, "TRIM_HORIZON")
        new = "attribute_not_exists(leaseKey)"
        assert await table.write("s1", new, item=lease) is True
        assert await table.write("s1", new, item=lease) is False  # exists: condition fails
        assert await table.get("s1") == lease

        take: dict[str, Any] = {":seen": {"N": "0"}, ":next": {"N": "1"}, ":me": {"S": "w"}}
        update = "SET leaseOwner = :me, leaseCounter = :next"
        assert await table.write("s1", "leaseCounter = :seen", take, update=update) is True
        assert await table.write("s1", "leaseCounter = :seen", take, update=update) is False
        assert await table.landed("s1", "w", 1) is True
        assert await table.landed("s1", "w", 2) is False
        assert await table.landed("s1", "w", 1, "49000") is False

        end = {":end": {"S": "SHARD_END"}}
        assert await table.write("s1", "checkpoint = :end", end, delete=True) is False
        assert [x.shard_id for x in await table.scan()] == ["s1"]

        with pytest.raises(CheckpointError, match=rf"^lease table {table.name}, s1: .*Validation"):
            await table.write("s1", "no such syntax ((", take, update=update)

    run(moto, body)


def test_scan_reads_every_row(moto: MotoServer) -> None:
    async def body(table: LeaseTable) -> None:
        ids = [f"shardId-{i:012d}" for i in range(30)]
        for shard_id in ids:
            assert await table.write(shard_id, "attribute_not_exists(leaseKey)",
                                     item=Lease(shard_id, None, 0, "LATEST"))
        assert sorted(x.shard_id for x in await table.scan()) == ids
        assert await table.get("absent") is None

    run(moto, body)


def test_missing_table_is_a_checkpoint_error(moto: MotoServer) -> None:
    async def main() -> None:
        async with get_session().create_client("dynamodb", region_name="us-east-1",
                                               endpoint_url=moto.endpoint) as client:
            await LeaseTable(client, "never-created").scan()

    with pytest.raises(CheckpointError, match=r"^lease table never-created: .*ResourceNotFound"):
        asyncio.run(main())
