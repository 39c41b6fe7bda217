"""Storing the position reached in a held shard (KCL's ``updateLease`` from its checkpointer).

Conditional on owner and counter, the write increments the counter, resets
``ownerSwitchesSinceCheckpoint`` and clears any pending checkpoint. A lease no longer ours
raises ``LeaseLost`` (the pipeline drops what it read since); other failures raise
``CheckpointError`` and are retried by the caller.
"""

from __future__ import annotations

from dredge.errors import CheckpointError, LeaseLost
from dredge.sources.kinesis.leases.holdings import OWNED, Holdings
from dredge.sources.kinesis.leases.table import LeaseTable
from dredge.sources.kinesis.metrics import checkpoints_total
from dredge.sources.kinesis.shards import SENTINELS

__all__ = ["LeaseCheckpointer"]

_UPDATE = (
    "SET #cp = :seq, checkpointSubSequenceNumber = :sub,"
    " ownerSwitchesSinceCheckpoint = :zero, leaseCounter = :next"
    " REMOVE pendingCheckpoint, pendingCheckpointSubSequenceNumber,"
    " pendingCheckpointState"
)


class LeaseCheckpointer:
    def __init__(self, table: LeaseTable, holdings: Holdings) -> None:
        self._table = table
        self._holdings = holdings

    async def checkpoint(self, shard_id: str, sequence: str, sub_sequence: int = 0) -> None:
        """Store the position reached in ``shard_id``; raises LeaseLost if we no longer own it."""
        if not (sequence.isdigit() or sequence in SENTINELS) or sub_sequence < 0:
            raise ValueError(f"invalid checkpoint {sequence!r}/{sub_sequence} for {shard_id}")
        holdings = self._holdings
        async with holdings.locked(shard_id) as h:
            if h is None:
                checkpoints_total.labels(outcome="lost").inc()
                raise LeaseLost(f"{shard_id}: not held by {holdings.worker_id}")
            sent_at = holdings.begin_write(shard_id, h)
            if sent_at is None:
                # held() stopped reporting it: its reader is being stopped; do not revive it.
                checkpoints_total.labels(outcome="lost").inc()
                raise LeaseLost(f"{shard_id}: not renewed within the failover time")
            values = holdings.owned_values(h) | {
                ":seq": {"S": sequence},
                ":sub": {"N": str(sub_sequence)},
                ":zero": {"N": "0"},
            }
            try:
                written = await self._table.write(shard_id, OWNED, values, update=_UPDATE,
                                                  names={"#cp": "checkpoint"})
            except CheckpointError:
                checkpoints_total.labels(outcome="failed").inc()
                raise
            if not written and not await self._table.landed(
                    shard_id, holdings.worker_id, h.counter + 1, sequence):
                holdings.drop(shard_id, h, "lost")
                checkpoints_total.labels(outcome="lost").inc()
                raise LeaseLost(f"{shard_id}: taken by another worker")
            holdings.renewed(h, sent_at)
        checkpoints_total.labels(outcome="ok").inc()
