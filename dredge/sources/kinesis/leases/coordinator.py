"""The face of the lease code for one stream (KCL's ``LeaseCoordinator``): the consumer's only entry.

It wires the table, this worker's holdings, the taker, renewer, checkpointer and the shard
syncer, and answers for them. The caller schedules ``renew()`` every ``renew_interval_s``
and ``take()`` every ``take_interval_s`` (KCL: about twice the failover time), and stops
the readers of leases it loses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from dredge.sources.kinesis.balance import parents_done
from dredge.sources.kinesis.config import LeaseConfig
from dredge.sources.kinesis.leases.checkpointer import LeaseCheckpointer
from dredge.sources.kinesis.leases.holdings import Holdings
from dredge.sources.kinesis.leases.item import Lease
from dredge.sources.kinesis.leases.renewer import LeaseRenewer
from dredge.sources.kinesis.leases.sync import ShardSyncer
from dredge.sources.kinesis.leases.table import DynamoDBClient, LeaseTable
from dredge.sources.kinesis.leases.taker import LeaseTaker
from dredge.sources.kinesis.shards import TRIM_HORIZON, ShardInfo, check_initial_position

__all__ = ["LeaseCoordinator"]


class LeaseCoordinator:
    """This worker's view of one lease table: what it holds, takes, renews and checkpoints.

    ``table``: the table's name (default ``config.table``); ``initial_position``: the
    checkpoint of new leases for shards that have no leased parent.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        config: LeaseConfig,
        worker_id: str,
        *,
        table: str = "",
        initial_position: str = TRIM_HORIZON,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        check_initial_position(initial_position, "initial_position")
        self._config = config
        self.worker_id = worker_id
        self.table = LeaseTable(client, table or config.table)
        self._holdings = Holdings(worker_id, config.failover_time_s, clock)
        self._taker = LeaseTaker(self.table, self._holdings, config, rng or random.Random())
        self._renewer = LeaseRenewer(self.table, self._holdings)
        self._checkpointer = LeaseCheckpointer(self.table, self._holdings)
        self._syncer = ShardSyncer(self.table, self._holdings, initial_position)

    # -- the table -----------------------------------------------------------------------

    async def ensure_table(self) -> None:
        await self.table.ensure_table()

    async def list_leases(self) -> list[Lease]:
        return await self.table.scan()

    async def get_lease(self, shard_id: str) -> Lease | None:
        return await self.table.get(shard_id)

    async def get_checkpoint(self, shard_id: str) -> tuple[str, int] | None:
        """(sequence number or sentinel, sub-sequence number), or None if the shard has no lease."""
        lease = await self.table.get(shard_id)
        return None if lease is None else (lease.checkpoint, lease.sub_sequence)

    async def sync_shards(self, shards: Iterable[ShardInfo]) -> None:
        await self._syncer.sync_shards(shards)

    async def clean_finished(self, listed: Iterable[str]) -> list[str]:
        return await self._syncer.clean_finished(listed)

    # -- ownership -----------------------------------------------------------------------

    def held(self) -> set[str]:
        """Leases held and renewed within the failover time by this worker's clock."""
        return self._holdings.held()

    @staticmethod
    def is_ready(shard_id: str, leases: Iterable[Lease]) -> bool:
        """True when every parent of ``shard_id`` is at SHARD_END or has no lease any more."""
        by_id = {lease.shard_id: lease for lease in leases}
        lease = by_id.get(shard_id)
        if lease is None:
            return False
        checkpoints = {s: other.checkpoint for s, other in by_id.items()}
        return parents_done(lease.parent_shard_ids, checkpoints)

    async def take(self) -> set[str]:
        return await self._taker.take()

    async def renew(self) -> set[str]:
        return await self._renewer.renew()

    async def checkpoint(self, shard_id: str, sequence: str, sub_sequence: int = 0) -> None:
        await self._checkpointer.checkpoint(shard_id, sequence, sub_sequence)

    async def release(self, shard_id: str) -> None:
        await self._renewer.release(shard_id)

    async def release_all(self) -> None:
        await self._renewer.release_all()
