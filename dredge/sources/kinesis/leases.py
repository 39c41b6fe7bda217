"""Shard leases and checkpoints in a DynamoDB table that the Kinesis Client Library (KCL 2.x) can read.

One item per shard, with KCL's attribute names and types (``DynamoDBLeaseSerializer``)::

    leaseKey (S, hash key = shard id)   leaseOwner (S, absent when free)   leaseCounter (N)
    checkpoint (S: sequence number or TRIM_HORIZON / LATEST / AT_TIMESTAMP / SHARD_END)
    checkpointSubSequenceNumber (N)     ownerSwitchesSinceCheckpoint (N)
    parentShardId (SS)  childShardIds (SS)  startingHashKey (S)  endingHashKey (S)
    pendingCheckpoint (S) / pendingCheckpointSubSequenceNumber (N)  (read, cleared on checkpoint)

Every write that changes ownership or position is conditional on ``leaseCounter``, which
the owner increments on each renewal; a worker that stops renewing loses its leases once
others have watched its counters stand still for ``failover_time_s`` (see ``balance``).
The caller schedules ``renew()`` every ``renew_interval_s`` and ``take()`` every few
seconds (KCL: about twice the failover time), and stops readers of leases they lose.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter, Gauge

from dredge.errors import CheckpointError, ConfigError, LeaseLost
from dredge.sources.kinesis.balance import (
    SHARD_END,
    CounterWatch,
    LeaseState,
    finished_leases,
    lineage_order,
    parents_done,
    plan_take,
    superseded,
)
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import REGISTRY

__all__ = [
    "AT_TIMESTAMP",
    "LATEST",
    "SHARD_END",
    "TRIM_HORIZON",
    "DynamoDBClient",
    "Lease",
    "LeaseConfig",
    "LeaseManager",
    "ShardInfo",
]

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
AT_TIMESTAMP = "AT_TIMESTAMP"
INITIAL_POSITIONS = frozenset({TRIM_HORIZON, LATEST, AT_TIMESTAMP})
SENTINELS = INITIAL_POSITIONS | {SHARD_END}

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_TABLE_POLL_S = 0.2
_TABLE_WAIT_S = 120.0

log = get_logger(__name__)

lease_events_total = Counter(
    "dredge_kinesis_lease_events_total",
    "Lease ownership changes seen by this worker (taken, stolen, lost, expired, released,"
    " deleted: the lease of a finished shard cleaned up).",
    ["event"],
    registry=REGISTRY,
)
leases_held = Gauge(
    "dredge_kinesis_leases_held",
    "Shard leases this worker holds after its last renewal.",
    registry=REGISTRY,
)
checkpoints_total = Counter(
    "dredge_kinesis_checkpoints_total",
    "Checkpoint writes by outcome (ok, lost, failed).",
    ["outcome"],
    registry=REGISTRY,
)


class DynamoDBClient(Protocol):
    """The part of an aiobotocore DynamoDB client this module uses."""

    async def describe_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def create_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def scan(self, **kwargs: Any) -> dict[str, Any]: ...
    async def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def put_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def update_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def delete_item(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LeaseConfig:
    table: str = "dredge-leases"
    # KCL failoverTimeMillis: a lease whose counter stands still this long is expired.
    failover_time_s: float = 10.0
    # About failover / 3, so two renewals in a row may fail before the lease expires.
    renew_interval_s: float = 3.0
    max_leases_per_worker: int = 0  # 0 = unlimited
    max_leases_to_steal_at_once: int = 1
    # Checkpoint of new leases for shards that have no leased parent.
    initial_position: str = TRIM_HORIZON

    def validate(self) -> None:
        if not _TABLE_NAME.match(self.table):
            raise ConfigError("table", "3-255 characters of A-Z a-z 0-9 _ . -")
        if not self.failover_time_s > 0:
            raise ConfigError("failover_time_s", "must be > 0")
        if not 0 < self.renew_interval_s < self.failover_time_s:
            raise ConfigError("renew_interval_s", "must be > 0 and < failover_time_s")
        if self.max_leases_per_worker < 0:
            raise ConfigError("max_leases_per_worker", "must be >= 0 (0 = unlimited)")
        if self.max_leases_to_steal_at_once < 1:
            raise ConfigError("max_leases_to_steal_at_once", "must be >= 1")
        if self.initial_position not in INITIAL_POSITIONS:
            raise ConfigError("initial_position", f"one of {sorted(INITIAL_POSITIONS)}")


@dataclass(frozen=True)
class ShardInfo:
    """A shard as shard discovery (ListShards) reports it."""

    shard_id: str
    parent_shard_ids: tuple[str, ...] = ()  # ParentShardId and AdjacentParentShardId
    starting_hash_key: str | None = None
    ending_hash_key: str | None = None


@dataclass(frozen=True)
class Lease:
    """One row of the lease table, as read."""

    shard_id: str
    owner: str | None
    counter: int
    checkpoint: str
    sub_sequence: int = 0
    owner_switches: int = 0
    parent_shard_ids: frozenset[str] = frozenset()
    child_shard_ids: frozenset[str] = frozenset()
    starting_hash_key: str | None = None
    ending_hash_key: str | None = None
    pending_checkpoint: str | None = None
    pending_sub_sequence: int | None = None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item, attribute for attribute as KCL writes it."""
        item: dict[str, Any] = {
            "leaseKey": {"S": self.shard_id},
            "leaseCounter": {"N": str(self.counter)},
            "checkpoint": {"S": self.checkpoint},
            "checkpointSubSequenceNumber": {"N": str(self.sub_sequence)},
            "ownerSwitchesSinceCheckpoint": {"N": str(self.owner_switches)},
        }
        if self.owner is not None:
            item["leaseOwner"] = {"S": self.owner}
        if self.parent_shard_ids:
            item["parentShardId"] = {"SS": sorted(self.parent_shard_ids)}
        if self.child_shard_ids:
            item["childShardIds"] = {"SS": sorted(self.child_shard_ids)}
        if self.starting_hash_key is not None and self.ending_hash_key is not None:
            item["startingHashKey"] = {"S": self.starting_hash_key}
            item["endingHashKey"] = {"S": self.ending_hash_key}
        if self.pending_checkpoint:
            item["pendingCheckpoint"] = {"S": self.pending_checkpoint}
            item["pendingCheckpointSubSequenceNumber"] = {"N": str(self.pending_sub_sequence or 0)}
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Lease:
        def s(name: str) -> str | None:
            v = item.get(name)
            return None if v is None else str(v["S"])

        def n(name: str) -> int | None:
            v = item.get(name)
            return None if v is None else int(v["N"])

        def ss(name: str) -> frozenset[str]:
            v = item.get(name)
            return frozenset() if v is None else frozenset(v["SS"])

        return cls(
            shard_id=str(item["leaseKey"]["S"]),
            owner=s("leaseOwner"),
            counter=n("leaseCounter") or 0,
            checkpoint=s("checkpoint") or TRIM_HORIZON,
            sub_sequence=n("checkpointSubSequenceNumber") or 0,
            owner_switches=n("ownerSwitchesSinceCheckpoint") or 0,
            parent_shard_ids=ss("parentShardId"),
            child_shard_ids=ss("childShardIds"),
            starting_hash_key=s("startingHashKey"),
            ending_hash_key=s("endingHashKey"),
            pending_checkpoint=s("pendingCheckpoint"),
            pending_sub_sequence=n("pendingCheckpointSubSequenceNumber"),
        )


@dataclass
class _Held:
    counter: int  # the leaseCounter our last successful write left in the table
    renewed_at: float  # our clock just before that write was sent
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _conditional_failed(exc: ClientError) -> bool:
    return _code(exc) == "ConditionalCheckFailedException"


class LeaseManager:
    """This worker's view of the lease table: what it holds, takes, renews and checkpoints."""

    def __init__(
        self,
        client: DynamoDBClient,
        config: LeaseConfig,
        worker_id: str,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._ddb = client
        self._config = config
        self._table = config.table
        self.worker_id = worker_id
        self._clock = clock
        self._rng = rng or random.Random()
        self._held: dict[str, _Held] = {}
        self._watch = CounterWatch()

    # -- table ---------------------------------------------------------------------------

    async def ensure_table(self) -> None:
        """Create the table (KCL key schema, on-demand billing) unless it exists; wait until ACTIVE."""
        try:
            status = await self._table_status()
            if status is None:
                try:
                    created = await self._ddb.create_table(
                        TableName=self._table,
                        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST",
                    )
                    status = str(created["TableDescription"]["TableStatus"])
                    log.info("lease_table_created", table=self._table)
                except ClientError as exc:
                    if _code(exc) != "ResourceInUseException":  # another worker won the race
                        raise
            # Real time, not self._clock: an injected test clock must not stall this wait.
            deadline = time.monotonic() + _TABLE_WAIT_S
            while status not in ("ACTIVE", "UPDATING"):
                if time.monotonic() > deadline:
                    raise CheckpointError(
                        f"lease table {self._table} not ACTIVE after {_TABLE_WAIT_S}s"
                    )
                await asyncio.sleep(_TABLE_POLL_S)
                status = await self._table_status()
        except (ClientError, BotoCoreError) as exc:
            raise CheckpointError(f"lease table {self._table}: {exc}") from exc

    async def _table_status(self) -> str | None:
        try:
            resp = await self._ddb.describe_table(TableName=self._table)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return str(resp["Table"]["TableStatus"])

    # -- shards and reads ----------------------------------------------------------------

    async def sync_shards(self, shards: Iterable[ShardInfo]) -> None:
        """Create a lease for each shard without one; record newly known children on parents.

        A shard whose parent already had a lease starts at TRIM_HORIZON, so nothing after
        the parent's end is skipped; others (including every shard of a first sync) start at
        ``initial_position``, and ``is_ready`` still orders children after parents. Leases are
        created parents first. A shard with a started descendant gets no lease: it was
        finished, and its lease may have been cleaned up (``clean_finished``).
        """
        by_id = {shard.shard_id: shard for shard in shards}
        parents = {s: shard.parent_shard_ids for s, shard in by_id.items()}
        existing = {lease.shard_id: lease for lease in await self.list_leases()}
        done = superseded(parents, {s: lease.checkpoint for s, lease in existing.items()})
        children: dict[str, set[str]] = {}
        for shard in by_id.values():
            for parent in shard.parent_shard_ids:
                children.setdefault(parent, set()).add(shard.shard_id)
        try:
            for shard in (by_id[s] for s in lineage_order(parents)):
                kids = frozenset(children.get(shard.shard_id, ()))
                if shard.shard_id in existing:
                    missing = kids - existing[shard.shard_id].child_shard_ids
                    if missing:
                        await self._add_children(shard.shard_id, missing)
                    continue
                if shard.shard_id in done:
                    continue
                leased_parent = any(p in existing for p in shard.parent_shard_ids)
                lease = Lease(
                    shard_id=shard.shard_id,
                    owner=None,
                    counter=0,
                    checkpoint=TRIM_HORIZON if leased_parent else self._config.initial_position,
                    parent_shard_ids=frozenset(shard.parent_shard_ids),
                    child_shard_ids=kids,
                    starting_hash_key=shard.starting_hash_key,
                    ending_hash_key=shard.ending_hash_key,
                )
                try:
                    await self._ddb.put_item(
                        TableName=self._table,
                        Item=lease.to_item(),
                        ConditionExpression="attribute_not_exists(leaseKey)",
                    )
                    log.info("lease_created", shard_id=shard.shard_id, checkpoint=lease.checkpoint)
                except ClientError as exc:
                    if not _conditional_failed(exc):  # else another worker created it first
                        raise
        except (ClientError, BotoCoreError) as exc:
            raise CheckpointError(f"lease table {self._table}: {exc}") from exc

    async def clean_finished(self, listed: Iterable[str]) -> list[str]:
        """Delete the leases of finished shards no one needs any more (``finished_leases``);
        ``listed``: the shard ids of a complete ListShards. Returns the shards deleted."""
        leases = await self.list_leases()
        doomed = finished_leases({lease.shard_id: lease.checkpoint for lease in leases},
                                 {lease.shard_id: lease.child_shard_ids for lease in leases},
                                 set(listed))
        deleted = []
        for shard_id in doomed:
            try:
                await self._ddb.delete_item(
                    TableName=self._table, Key={"leaseKey": {"S": shard_id}},
                    ConditionExpression="checkpoint = :end",
                    ExpressionAttributeValues={":end": {"S": SHARD_END}})
            except ClientError as exc:
                if _conditional_failed(exc):
                    continue
                raise CheckpointError(f"lease table {self._table}: {exc}") from exc
            except BotoCoreError as exc:
                raise CheckpointError(f"lease table {self._table}: {exc}") from exc
            self._held.pop(shard_id, None)
            lease_events_total.labels(event="deleted").inc()
            log.info("lease_deleted", shard_id=shard_id, why="finished")
            deleted.append(shard_id)
        return deleted

    async def _add_children(self, shard_id: str, kids: Iterable[str]) -> None:
        # ADD on a string set is idempotent and leaves leaseCounter alone, so it never
        # disturbs the owner's conditional writes.
        await self._ddb.update_item(
            TableName=self._table,
            Key={"leaseKey": {"S": shard_id}},
            UpdateExpression="ADD childShardIds :kids",
            ConditionExpression="attribute_exists(leaseKey)",
            ExpressionAttributeValues={":kids": {"SS": sorted(kids)}},
        )

    async def list_leases(self) -> list[Lease]:
        """Every lease row (a consistent scan of the whole table)."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        try:
            while True:
                page = await self._ddb.scan(**kwargs)
                leases.extend(Lease.from_item(item) for item in page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    return leases
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise CheckpointError(f"lease table {self._table}: {exc}") from exc

    async def get_lease(self, shard_id: str) -> Lease | None:
        try:
            resp = await self._ddb.get_item(
                TableName=self._table, Key={"leaseKey": {"S": shard_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise CheckpointError(f"lease {shard_id}: {exc}") from exc
        item = resp.get("Item")
        return Lease.from_item(item) if item else None

    async def get_checkpoint(self, shard_id: str) -> tuple[str, int] | None:
        """(sequence number or sentinel, sub-sequence number), or None if the shard has no lease."""
        lease = await self.get_lease(shard_id)
        return None if lease is None else (lease.checkpoint, lease.sub_sequence)

    def held(self) -> set[str]:
        """Leases held and renewed within the failover time by this worker's clock."""
        now = self._clock()
        return {s for s, h in self._held.items() if not self._expired_locally(h, now)}

    @staticmethod
    def is_ready(shard_id: str, leases: Iterable[Lease]) -> bool:
        """True when every parent of ``shard_id`` is at SHARD_END or has no lease any more."""
        by_id = {lease.shard_id: lease for lease in leases}
        lease = by_id.get(shard_id)
        if lease is None:
            return False
        checkpoints = {s: other.checkpoint for s, other in by_id.items()}
        return parents_done(lease.parent_shard_ids, checkpoints)

    # -- ownership -----------------------------------------------------------------------

    async def renew(self) -> set[str]:
        """Increment the counter of every held lease; drop those lost or locally expired.

        Returns the leases still held. Transient errors keep a lease until it expires by
        our own clock, so a flaky network does not flap ownership.
        """
        await asyncio.gather(*(self._renew_one(s) for s in list(self._held)))
        held = self.held()
        leases_held.set(len(held))
        return held

    async def _renew_one(self, shard_id: str) -> None:
        h = self._held.get(shard_id)
        if h is None:
            return
        async with h.lock:
            if self._held.get(shard_id) is not h:
                return  # released or lost while we waited
            sent_at = self._clock()
            if self._expired_locally(h, sent_at):
                # Others may already have taken it; renewing now could hide that.
                self._drop(shard_id, h, "expired")
                return
            try:
                await self._ddb.update_item(
                    TableName=self._table,
                    Key={"leaseKey": {"S": shard_id}},
                    UpdateExpression="SET leaseCounter = :next",
                    ConditionExpression="leaseOwner = :me AND leaseCounter = :held",
                    ExpressionAttributeValues=self._counter_values(h.counter),
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    log.warning("lease_renew_failed", shard_id=shard_id, error=_code(exc))
                    return
                if not await self._write_landed(shard_id, h.counter + 1):
                    self._drop(shard_id, h, "lost")
                    return
            except BotoCoreError as exc:
                log.warning("lease_renew_failed", shard_id=shard_id, error=type(exc).__name__)
                return
            h.counter += 1
            h.renewed_at = sent_at

    async def take(self) -> set[str]:
        """One round of KCL's lease taker; returns the shard ids newly acquired."""
        view = await self.list_leases()
        now = self._clock()
        for shard_id, h in list(self._held.items()):
            if self._expired_locally(h, now):
                self._drop(shard_id, h, "expired")
        states = [LeaseState(lease.shard_id, lease.owner, lease.counter) for lease in view]
        self._watch.observe(states, now)
        plan = plan_take(
            states,
            self.worker_id,
            held=set(self._held),
            expired=self._watch.expired_set(now, self._config.failover_time_s),
            max_leases=self._config.max_leases_per_worker,
            max_steal=self._config.max_leases_to_steal_at_once,
            rng=self._rng,
        )
        by_id = {lease.shard_id: lease for lease in view}
        taken: set[str] = set()
        for shard_id in plan.shard_ids:
            if await self._take_one(by_id[shard_id]):
                taken.add(shard_id)
                event = "stolen" if shard_id in plan.steal else "taken"
                lease_events_total.labels(event=event).inc()
                log.info(
                    "lease_" + event,
                    shard_id=shard_id,
                    previous_owner=by_id[shard_id].owner,
                    target=plan.target,
                    workers=plan.workers,
                )
        leases_held.set(len(self.held()))
        return taken

    async def _take_one(self, lease: Lease) -> bool:
        """Conditional on the counter we observed, exactly as KCL's takeLease."""
        values = {":next": {"N": str(lease.counter + 1)}, ":seen": {"N": str(lease.counter)}}
        values[":me"] = {"S": self.worker_id}
        update = "SET leaseOwner = :me, leaseCounter = :next"
        if lease.owner is not None and lease.owner != self.worker_id:
            update += " ADD ownerSwitchesSinceCheckpoint :one"
            values[":one"] = {"N": "1"}
        sent_at = self._clock()
        try:
            await self._ddb.update_item(
                TableName=self._table,
                Key={"leaseKey": {"S": lease.shard_id}},
                UpdateExpression=update,
                ConditionExpression="leaseCounter = :seen",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                log.warning("lease_take_failed", shard_id=lease.shard_id, error=_code(exc))
            return False
        except BotoCoreError as exc:
            log.warning("lease_take_failed", shard_id=lease.shard_id, error=type(exc).__name__)
            return False
        self._held[lease.shard_id] = _Held(counter=lease.counter + 1, renewed_at=sent_at)
        return True

    async def checkpoint(self, shard_id: str, sequence: str, sub_sequence: int = 0) -> None:
        """Store the position reached in ``shard_id``; raises LeaseLost if we no longer own it.

        Conditional on owner and counter, increments the counter (KCL's updateLease), resets
        ``ownerSwitchesSinceCheckpoint`` and clears any pending checkpoint.
        """
        if not (sequence.isdigit() or sequence in SENTINELS) or sub_sequence < 0:
            raise ValueError(f"invalid checkpoint {sequence!r}/{sub_sequence} for {shard_id}")
        h = self._held.get(shard_id)
        if h is None:
            checkpoints_total.labels(outcome="lost").inc()
            raise LeaseLost(f"{shard_id}: not held by {self.worker_id}")
        async with h.lock:
            if self._held.get(shard_id) is not h:
                checkpoints_total.labels(outcome="lost").inc()
                raise LeaseLost(f"{shard_id}: lost while waiting to checkpoint")
            sent_at = self._clock()
            if self._expired_locally(h, sent_at):
                # held() stopped reporting it: its reader is being stopped; do not revive it.
                self._drop(shard_id, h, "expired")
                checkpoints_total.labels(outcome="lost").inc()
                raise LeaseLost(f"{shard_id}: not renewed within the failover time")
            values = self._counter_values(h.counter)
            values |= {
                ":seq": {"S": sequence},
                ":sub": {"N": str(sub_sequence)},
                ":zero": {"N": "0"},
            }
            try:
                await self._ddb.update_item(
                    TableName=self._table,
                    Key={"leaseKey": {"S": shard_id}},
                    UpdateExpression=(
                        "SET #cp = :seq, checkpointSubSequenceNumber = :sub,"
                        " ownerSwitchesSinceCheckpoint = :zero, leaseCounter = :next"
                        " REMOVE pendingCheckpoint, pendingCheckpointSubSequenceNumber,"
                        " pendingCheckpointState"
                    ),
                    ConditionExpression="leaseOwner = :me AND leaseCounter = :held",
                    ExpressionAttributeNames={"#cp": "checkpoint"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    checkpoints_total.labels(outcome="failed").inc()
                    raise CheckpointError(f"{shard_id}: {exc}") from exc
                if not await self._write_landed(shard_id, h.counter + 1, sequence):
                    self._drop(shard_id, h, "lost")
                    checkpoints_total.labels(outcome="lost").inc()
                    raise LeaseLost(f"{shard_id}: taken by another worker") from exc
            except BotoCoreError as exc:
                checkpoints_total.labels(outcome="failed").inc()
                raise CheckpointError(f"{shard_id}: {exc}") from exc
            h.counter += 1
            h.renewed_at = sent_at
        checkpoints_total.labels(outcome="ok").inc()

    async def release(self, shard_id: str) -> None:
        """Give a lease up on graceful shutdown (KCL's evictLease): remove leaseOwner so another
        worker takes it at once instead of waiting for the failover time. Never raises for a
        lease already lost."""
        h = self._held.get(shard_id)
        if h is None:
            return
        async with h.lock:
            if self._held.get(shard_id) is not h:
                return
            self._held.pop(shard_id)
            try:
                await self._ddb.update_item(
                    TableName=self._table,
                    Key={"leaseKey": {"S": shard_id}},
                    UpdateExpression="SET leaseCounter = leaseCounter + :one REMOVE leaseOwner",
                    ConditionExpression="leaseOwner = :me",
                    ExpressionAttributeValues={":me": {"S": self.worker_id}, ":one": {"N": "1"}},
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    log.warning("lease_release_failed", shard_id=shard_id, error=_code(exc))
                return
            except BotoCoreError as exc:
                log.warning("lease_release_failed", shard_id=shard_id, error=type(exc).__name__)
                return
        lease_events_total.labels(event="released").inc()
        leases_held.set(len(self.held()))
        log.info("lease_released", shard_id=shard_id)

    async def release_all(self) -> None:
        await asyncio.gather(*(self.release(s) for s in list(self._held)))
        leases_held.set(0)

    # -- helpers -------------------------------------------------------------------------

    def _counter_values(self, counter: int) -> dict[str, Any]:
        return {
            ":me": {"S": self.worker_id},
            ":held": {"N": str(counter)},
            ":next": {"N": str(counter + 1)},
        }

    async def _write_landed(
        self, shard_id: str, counter: int, checkpoint: str | None = None
    ) -> bool:
        """After a conditional failure: did our own earlier attempt (an SDK retry) succeed?"""
        try:
            lease = await self.get_lease(shard_id)
        except CheckpointError:
            return False
        return (
            lease is not None
            and lease.owner == self.worker_id
            and lease.counter == counter
            and (checkpoint is None or lease.checkpoint == checkpoint)
        )

    def _drop(self, shard_id: str, h: _Held, event: str) -> None:
        # Only this very hold: a take() may have replaced it with a fresh one meanwhile.
        if self._held.get(shard_id) is h:
            del self._held[shard_id]
            lease_events_total.labels(event=event).inc()
            log.warning("lease_" + event, shard_id=shard_id, worker=self.worker_id)

    def _expired_locally(self, h: _Held, now: float) -> bool:
        return now - h.renewed_at > self._config.failover_time_s
