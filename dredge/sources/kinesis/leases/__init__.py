"""Shard leases and checkpoints in a DynamoDB table that the Kinesis Client Library (KCL 2.x) can read.

One item per shard, with KCL's attribute names and types (``item``). Every write that
changes ownership or position is conditional on ``leaseCounter``, which the owner
increments on each renewal; a worker that stops renewing loses its leases once others have
watched its counters stand still for ``failover_time_s`` (see ``balance``).

One job per module, as in KCL's ``leases`` package::

    item.py          Lease: one row and its DynamoDB item         (LeaseSerializer)
    table.py         LeaseTable: create, scan, get, conditional write (LeaseRefresher)
    holdings.py      what this worker holds, by its own clock (state only)
    taker.py         LeaseTaker: take free/expired leases, steal to balance
    renewer.py       LeaseRenewer: renew held leases, release them on stop
    checkpointer.py  LeaseCheckpointer: store the position reached in a held shard
    sync.py          ShardSyncer: leases follow the shards; finished ones cleaned up
    coordinator.py   LeaseCoordinator: the one object the consumer uses

The pure decisions (who takes what, lineage) are in ``sources.kinesis.balance``; the
settings in ``sources.kinesis.config.LeaseConfig``.
"""

from dredge.sources.kinesis.leases.coordinator import LeaseCoordinator
from dredge.sources.kinesis.leases.item import Lease
from dredge.sources.kinesis.leases.table import DynamoDBClient, LeaseTable

__all__ = ["DynamoDBClient", "Lease", "LeaseCoordinator", "LeaseTable"]
