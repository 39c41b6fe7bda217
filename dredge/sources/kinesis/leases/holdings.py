"""The leases this worker holds, by its own clock: state only, no I/O (the taker, renewer and
checkpointer share it).

A hold remembers the ``leaseCounter`` our last successful write left in the table and when
that write was sent. A hold not renewed within the failover time has expired *locally*:
others may have taken the lease, so it is never written again. Writes on one lease are
serialized by the hold's lock; a hold replaced or dropped meanwhile is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from dredge.sources.kinesis.metrics import lease_events_total
from dredge.telemetry.logging import get_logger

__all__ = ["OWNED", "Held", "Holdings"]

# The condition of every write of a held lease (KCL's renewLease / updateLease).
OWNED = "leaseOwner = :me AND leaseCounter = :held"

log = get_logger(__name__)


@dataclass
class Held:
    counter: int  # the leaseCounter our last successful write left in the table
    renewed_at: float  # our clock just before that write was sent
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Holdings:
    def __init__(self, worker_id: str, failover_time_s: float, clock: Callable[[], float]) -> None:
        self.worker_id = worker_id
        self.clock = clock
        self._failover_s = failover_time_s
        self._held: dict[str, Held] = {}

    def held(self) -> set[str]:
        """Leases held and renewed within the failover time by this worker's clock."""
        now = self.clock()
        return {s for s, h in self._held.items() if not self.expired(h, now)}

    def ids(self) -> list[str]:
        """Every hold, expired or not."""
        return list(self._held)

    def add(self, shard_id: str, counter: int, sent_at: float) -> None:
        self._held[shard_id] = Held(counter=counter, renewed_at=sent_at)

    def forget(self, shard_id: str) -> None:
        self._held.pop(shard_id, None)

    def expired(self, h: Held, now: float) -> bool:
        return now - h.renewed_at > self._failover_s

    def drop_expired(self) -> None:
        now = self.clock()
        for shard_id, h in list(self._held.items()):
            if self.expired(h, now):
                self.drop(shard_id, h, "expired")

    def drop(self, shard_id: str, h: Held, event: str) -> None:
        # Only this very hold: a take() may have replaced it with a fresh one meanwhile.
        if self._held.get(shard_id) is h:
            del self._held[shard_id]
            lease_events_total.labels(event=event).inc()
            log.warning("lease_" + event, shard_id=shard_id, worker=self.worker_id)

    @contextlib.asynccontextmanager
    async def locked(self, shard_id: str) -> AsyncIterator[Held | None]:
        """The hold of ``shard_id`` under its lock; None when not held (or dropped while waiting)."""
        h = self._held.get(shard_id)
        if h is None:
            yield None
            return
        async with h.lock:
            yield h if self._held.get(shard_id) is h else None

    def begin_write(self, shard_id: str, h: Held) -> float | None:
        """The time a write of a held lease is sent; None (and the hold dropped) when it has
        expired: others may already have taken it, and writing now could hide that."""
        sent_at = self.clock()
        if self.expired(h, sent_at):
            self.drop(shard_id, h, "expired")
            return None
        return sent_at

    def owned_values(self, h: Held) -> dict[str, Any]:
        """Values of ``OWNED`` for a write that also sets ``leaseCounter = :next``."""
        return {
            ":me": {"S": self.worker_id},
            ":held": {"N": str(h.counter)},
            ":next": {"N": str(h.counter + 1)},
        }

    @staticmethod
    def renewed(h: Held, sent_at: float) -> None:
        """Our write of the hold's lease landed: the counter moved on by one."""
        h.counter += 1
        h.renewed_at = sent_at
