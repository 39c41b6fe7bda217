"""The lease table's I/O (KCL's ``LeaseRefresher``): create it, read rows, one conditional write.

Only shard leases are read (``item.is_lease``): KCL 3.x's own items in a shared table are
passed over. Every change of a row goes through ``LeaseTable.write``: a conditional PutItem, UpdateItem
or DeleteItem that answers True (written) or False (the condition did not hold: someone
else changed the row first); any other failure is a ``CheckpointError`` whose cause is
botocore's error. Reads are strongly consistent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from botocore.exceptions import ClientError

from dredge.aws import error_code, translated
from dredge.errors import CheckpointError
from dredge.sources.kinesis.leases.item import Lease, is_lease, key
from dredge.telemetry.logging import get_logger

__all__ = ["DynamoDBClient", "LeaseTable"]

_TABLE_POLL_S = 0.2
_TABLE_WAIT_S = 120.0
_CONDITION_FAILED = "ConditionalCheckFailedException"

log = get_logger(__name__)


class DynamoDBClient(Protocol):
    """The part of an aiobotocore DynamoDB client the lease table uses."""

    async def describe_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def create_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def scan(self, **kwargs: Any) -> dict[str, Any]: ...
    async def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def put_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def update_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def delete_item(self, **kwargs: Any) -> dict[str, Any]: ...


class LeaseTable:
    """One stream's lease table."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self._ddb = client
        self.name = name
        self._foreign: list[str] = []  # keys of the last scan's foreign items (logged on change)

    async def ensure_table(self) -> None:
        """Create the table (KCL key schema, on-demand billing) unless it exists; wait until ACTIVE."""
        with translated(CheckpointError, f"lease table {self.name}"):
            status = await self._status()
            if status is None:
                try:
                    created = await self._ddb.create_table(
                        TableName=self.name,
                        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST",
                    )
                    status = str(created["TableDescription"]["TableStatus"])
                    log.info("lease_table_created", table=self.name)
                except ClientError as exc:
                    if error_code(exc) != "ResourceInUseException":  # another worker won the race
                        raise
            # Real time, not an injected clock: a test clock must not stall this wait.
            deadline = time.monotonic() + _TABLE_WAIT_S
            while status not in ("ACTIVE", "UPDATING"):
                if time.monotonic() > deadline:
                    raise CheckpointError(f"lease table {self.name} not ACTIVE after {_TABLE_WAIT_S}s")
                await asyncio.sleep(_TABLE_POLL_S)
                status = await self._status()

    async def _status(self) -> str | None:
        try:
            resp = await self._ddb.describe_table(TableName=self.name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return str(resp["Table"]["TableStatus"])

    async def scan(self) -> list[Lease]:
        """Every shard lease (a consistent scan of the whole table). Items that are not
        shard leases (KCL 3.x's migration state and worker metrics, ``item.is_lease``) are
        passed over: never balanced, taken or written."""
        leases: list[Lease] = []
        foreign: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        with translated(CheckpointError, f"lease table {self.name}"):
            while True:
                page = await self._ddb.scan(**kwargs)
                for item in page.get("Items", []):
                    if is_lease(item):
                        leases.append(Lease.from_item(item))
                    else:
                        foreign.append(str(item.get("leaseKey", {}).get("S", "?")))
                if not page.get("LastEvaluatedKey"):
                    if foreign and foreign != self._foreign:
                        log.info("lease_table_foreign_items", table=self.name, keys=foreign[:10],
                                 count=len(foreign))
                    self._foreign = foreign
                    return leases
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def get(self, shard_id: str) -> Lease | None:
        with translated(CheckpointError, f"lease {shard_id}"):
            resp = await self._ddb.get_item(TableName=self.name, Key=key(shard_id),
                                            ConsistentRead=True)
        item = resp.get("Item")
        return Lease.from_item(item) if item else None

    async def write(self, shard_id: str, condition: str, values: dict[str, Any] | None = None,
                    *, update: str = "", item: Lease | None = None, delete: bool = False,
                    names: dict[str, str] | None = None) -> bool:
        """One conditional write of ``shard_id``'s row: PutItem of ``item``, DeleteItem
        (``delete``) or UpdateItem (``update``). False when ``condition`` did not hold."""
        kwargs: dict[str, Any] = {"TableName": self.name, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if item is not None:
            call = self._ddb.put_item(Item=item.to_item(), **kwargs)
        elif delete:
            call = self._ddb.delete_item(Key=key(shard_id), **kwargs)
        else:
            call = self._ddb.update_item(Key=key(shard_id), UpdateExpression=update, **kwargs)
        with translated(CheckpointError, f"lease table {self.name}, {shard_id}"):
            try:
                await call
            except ClientError as exc:
                if error_code(exc) == _CONDITION_FAILED:
                    return False
                raise
        return True

    async def landed(self, shard_id: str, owner: str, counter: int,
                     checkpoint: str | None = None) -> bool:
        """After a failed condition: did our own earlier attempt (an SDK retry) succeed?"""
        try:
            lease = await self.get(shard_id)
        except CheckpointError:
            return False
        return (
            lease is not None
            and lease.owner == owner
            and lease.counter == counter
            and (checkpoint is None or lease.checkpoint == checkpoint)
        )
