"""Taking leases (KCL's ``LeaseTaker``): free and expired ones first, then stealing to balance.

The decisions are ``balance.plan_take``'s (pure); this module reads the table, watches the
counters on this worker's clock, and writes each take conditional on the counter observed,
exactly as KCL's ``takeLease``.
"""

from __future__ import annotations

import random
from typing import Any

from dredge.aws import error_name
from dredge.errors import CheckpointError
from dredge.sources.kinesis.balance import CounterWatch, LeaseState, plan_take
from dredge.sources.kinesis.config import LeaseConfig
from dredge.sources.kinesis.leases.holdings import Holdings
from dredge.sources.kinesis.leases.item import Lease
from dredge.sources.kinesis.leases.table import LeaseTable
from dredge.sources.kinesis.metrics import lease_events_total, leases_held
from dredge.telemetry.logging import get_logger

__all__ = ["LeaseTaker"]

log = get_logger(__name__)


class LeaseTaker:
    def __init__(self, table: LeaseTable, holdings: Holdings, config: LeaseConfig,
                 rng: random.Random) -> None:
        self._table = table
        self._holdings = holdings
        self._config = config
        self._rng = rng
        self._watch = CounterWatch()

    async def take(self) -> set[str]:
        """One round of the taker; returns the shard ids newly acquired."""
        view = await self._table.scan()
        holdings = self._holdings
        now = holdings.clock()
        holdings.drop_expired()
        states = [LeaseState(lease.shard_id, lease.owner, lease.counter) for lease in view]
        self._watch.observe(states, now)
        plan = plan_take(
            states,
            holdings.worker_id,
            held=set(holdings.ids()),
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
        leases_held.set(len(holdings.held()))
        return taken

    async def _take_one(self, lease: Lease) -> bool:
        me = self._holdings.worker_id
        values: dict[str, Any] = {":next": {"N": str(lease.counter + 1)},
                                  ":seen": {"N": str(lease.counter)}, ":me": {"S": me}}
        update = "SET leaseOwner = :me, leaseCounter = :next"
        if lease.owner is not None and lease.owner != me:
            update += " ADD ownerSwitchesSinceCheckpoint :one"
            values[":one"] = {"N": "1"}
        sent_at = self._holdings.clock()
        try:
            written = await self._table.write(lease.shard_id, "leaseCounter = :seen", values,
                                              update=update)
        except CheckpointError as exc:
            log.warning("lease_take_failed", shard_id=lease.shard_id,
                        error=error_name(exc.__cause__ or exc))
            return False
        if written:
            self._holdings.add(lease.shard_id, lease.counter + 1, sent_at)
        return written
