"""Keeping held leases (KCL's ``LeaseRenewer``) and giving them up on a graceful stop.

A renewal increments ``leaseCounter``, conditional on owner and counter; others watch the
counter move and leave the lease alone. Transient errors keep a lease until it expires by
our own clock, so a flaky network does not flap ownership. ``release`` removes the owner
(KCL's ``evictLease``) so another worker takes the lease at once instead of waiting for
the failover time.
"""

from __future__ import annotations

import asyncio

from dredge.aws import error_name
from dredge.errors import CheckpointError
from dredge.sources.kinesis.leases.holdings import OWNED, Holdings
from dredge.sources.kinesis.leases.table import LeaseTable
from dredge.sources.kinesis.metrics import lease_events_total, leases_held
from dredge.telemetry.logging import get_logger

__all__ = ["LeaseRenewer"]

log = get_logger(__name__)


def _failed(event: str, shard_id: str, exc: CheckpointError) -> None:
    log.warning(event, shard_id=shard_id, error=error_name(exc.__cause__ or exc))


class LeaseRenewer:
    def __init__(self, table: LeaseTable, holdings: Holdings) -> None:
        self._table = table
        self._holdings = holdings

    async def renew(self) -> set[str]:
        """Increment the counter of every held lease; drop those lost or locally expired.
        Returns the leases still held."""
        await asyncio.gather(*(self._renew_one(s) for s in self._holdings.ids()))
        held = self._holdings.held()
        leases_held.set(len(held))
        return held

    async def _renew_one(self, shard_id: str) -> None:
        holdings = self._holdings
        async with holdings.locked(shard_id) as h:
            if h is None:
                return  # released or lost while we waited
            sent_at = holdings.begin_write(shard_id, h)
            if sent_at is None:
                return
            try:
                written = await self._table.write(shard_id, OWNED, holdings.owned_values(h),
                                                  update="SET leaseCounter = :next")
            except CheckpointError as exc:
                _failed("lease_renew_failed", shard_id, exc)
                return
            if not written and not await self._table.landed(shard_id, holdings.worker_id,
                                                             h.counter + 1):
                holdings.drop(shard_id, h, "lost")
                return
            holdings.renewed(h, sent_at)

    async def release(self, shard_id: str) -> None:
        """Give a lease up; never raises for a lease already lost."""
        holdings = self._holdings
        async with holdings.locked(shard_id) as h:
            if h is None:
                return
            holdings.forget(shard_id)
            try:
                written = await self._table.write(
                    shard_id, "leaseOwner = :me",
                    {":me": {"S": holdings.worker_id}, ":one": {"N": "1"}},
                    update="SET leaseCounter = leaseCounter + :one REMOVE leaseOwner")
            except CheckpointError as exc:
                _failed("lease_release_failed", shard_id, exc)
                return
            if not written:
                return
        lease_events_total.labels(event="released").inc()
        leases_held.set(len(holdings.held()))
        log.info("lease_released", shard_id=shard_id)

    async def release_all(self) -> None:
        await asyncio.gather(*(self.release(s) for s in self._holdings.ids()))
        leases_held.set(0)
