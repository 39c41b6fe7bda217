"""Leases follow the stream's shards (KCL's ``HierarchicalShardSyncer`` and ``LeaseCleanupManager``).

``sync_shards`` creates a lease for each listed shard without one and records newly known
children on their parents; ``clean_finished`` deletes the leases of finished shards that no
one needs any more. The lineage decisions are ``balance``'s (pure).
"""

from __future__ import annotations

from collections.abc import Iterable

from dredge.errors import CheckpointError
from dredge.sources.kinesis.balance import finished_leases, lineage_order, superseded
from dredge.sources.kinesis.leases.holdings import Holdings
from dredge.sources.kinesis.leases.item import Lease
from dredge.sources.kinesis.leases.table import LeaseTable
from dredge.sources.kinesis.metrics import lease_events_total
from dredge.sources.kinesis.shards import SHARD_END, TRIM_HORIZON, ShardInfo
from dredge.telemetry.logging import get_logger

__all__ = ["ShardSyncer"]

log = get_logger(__name__)


class ShardSyncer:
    def __init__(self, table: LeaseTable, holdings: Holdings, initial_position: str) -> None:
        self._table = table
        self._holdings = holdings
        self._initial_position = initial_position

    async def sync_shards(self, shards: Iterable[ShardInfo]) -> None:
        """Create a lease for each shard without one; record newly known children on parents.

        A shard whose parent already had a lease starts at TRIM_HORIZON, so nothing after
        the parent's end is skipped; others (including every shard of a first sync) start at
        the initial position, and readiness still orders children after parents. Leases are
        created parents first. A shard with a started descendant gets no lease: it was
        finished, and its lease may have been cleaned up (``clean_finished``).
        """
        by_id = {shard.shard_id: shard for shard in shards}
        parents = {s: shard.parent_shard_ids for s, shard in by_id.items()}
        existing = {lease.shard_id: lease for lease in await self._table.scan()}
        done = superseded(parents, {s: lease.checkpoint for s, lease in existing.items()})
        children: dict[str, set[str]] = {}
        for shard in by_id.values():
            for parent in shard.parent_shard_ids:
                children.setdefault(parent, set()).add(shard.shard_id)
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
                checkpoint=TRIM_HORIZON if leased_parent else self._initial_position,
                parent_shard_ids=frozenset(shard.parent_shard_ids),
                child_shard_ids=kids,
                starting_hash_key=shard.starting_hash_key,
                ending_hash_key=shard.ending_hash_key,
            )
            # A failed condition: another worker created it first.
            if await self._table.write(shard.shard_id, "attribute_not_exists(leaseKey)", item=lease):
                log.info("lease_created", shard_id=shard.shard_id, checkpoint=lease.checkpoint)

    async def _add_children(self, shard_id: str, kids: Iterable[str]) -> None:
        # ADD on a string set is idempotent and leaves leaseCounter alone, so it never
        # disturbs the owner's conditional writes.
        added = await self._table.write(shard_id, "attribute_exists(leaseKey)",
                                        {":kids": {"SS": sorted(kids)}},
                                        update="ADD childShardIds :kids")
        if not added:
            raise CheckpointError(f"lease table {self._table.name}, {shard_id}: lease vanished")

    async def clean_finished(self, listed: Iterable[str]) -> list[str]:
        """Delete the leases of finished shards no one needs any more (``finished_leases``);
        ``listed``: the shard ids of a complete ListShards. Returns the shards deleted."""
        leases = await self._table.scan()
        doomed = finished_leases({lease.shard_id: lease.checkpoint for lease in leases},
                                 {lease.shard_id: lease.child_shard_ids for lease in leases},
                                 set(listed))
        deleted = []
        for shard_id in doomed:
            if not await self._table.write(shard_id, "checkpoint = :end",
                                           {":end": {"S": SHARD_END}}, delete=True):
                continue
            self._holdings.forget(shard_id)
            lease_events_total.labels(event="deleted").inc()
            log.info("lease_deleted", shard_id=shard_id, why="finished")
            deleted.append(shard_id)
        return deleted
