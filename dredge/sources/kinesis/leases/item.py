"""One lease row and its DynamoDB item, attribute for attribute as KCL writes it (KCL's ``DynamoDBLeaseSerializer``).

::

    leaseKey (S, hash key = shard id)   leaseOwner (S, absent when free)   leaseCounter (N)
    checkpoint (S: sequence number or TRIM_HORIZON / LATEST / AT_TIMESTAMP / SHARD_END)
    checkpointSubSequenceNumber (N)     ownerSwitchesSinceCheckpoint (N)
    parentShardId (SS)  childShardIds (SS)  startingHashKey (S)  endingHashKey (S)
    pendingCheckpoint (S) / pendingCheckpointSubSequenceNumber (N)  (read, cleared on checkpoint)

The item format is KCL's byte for byte: a KCL application can read Dredge's table and the
other way round. ``key`` is the item key of one shard's lease.

KCL 3.x writes other items into the same table when it shares or migrates it: its migration
state (``leaseKey`` ``Migration3.0``) and workers' metric stats, each with an ``entityType``.
``is_lease`` tells them apart: a shard lease has no ``entityType`` and always carries
``leaseCounter`` and ``checkpoint``. Such foreign items are never read as leases, counted
or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dredge.sources.kinesis.shards import TRIM_HORIZON

__all__ = ["Lease", "is_lease", "key"]

MIGRATION_KEY = "Migration3.0"  # KCL 3.x's migration state item


def is_lease(item: Mapping[str, Any]) -> bool:
    """Is this item a shard lease (not one of KCL 3.x's other entities)?"""
    return ("entityType" not in item and "leaseCounter" in item and "checkpoint" in item
            and item.get("leaseKey", {}).get("S") != MIGRATION_KEY)


def key(shard_id: str) -> dict[str, Any]:
    """The item key of a shard's lease."""
    return {"leaseKey": {"S": shard_id}}


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
