"""``/readyz``: named checks, each ``None`` when fine or the reason it is not.

Components register their checks as they start (the daemon: store open, index loaded and
fresh, lease tables readable and leases held or none needed). Checks are cheap reads: the
lease tables are read by :class:`LeaseWatch` in the daemon's loop, not by a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dredge.errors import DredgeError

if TYPE_CHECKING:
    from dredge.index.live import IndexManager
    from dredge.snapshots import SnapshotSource
    from dredge.sources.kinesis.consumer import StreamConsumer

Check = Callable[[], str | None]


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def remove(self, name: str) -> None:
        with self._lock:
            self._checks.pop(name, None)

    def reasons(self) -> dict[str, str]:
        """Name -> reason of every failing check (empty: ready)."""
        with self._lock:
            checks = list(self._checks.items())
        out: dict[str, str] = {}
        for name, check in checks:
            try:
                reason = check()
            except Exception as exc:  # a check that fails is a reason, not a 500
                reason = f"{type(exc).__name__}: {exc}"
            if reason:
                out[name] = reason
        return out


def index_check(snapshots: SnapshotSource, manager: IndexManager | None, stale_s: float,
                clock: Callable[[], float] = time.time) -> Check:
    """The index answers (a crashed provider: not ready) and, when live, every polling
    source (EC2, events, CIDR files; not ownership files read once) reported within
    ``stale_s``."""
    from dredge.index.providers.ownership import OWNERSHIP_KIND

    def check() -> str | None:
        try:
            snapshots.current()
        except DredgeError as exc:
            return str(exc)
        if manager is None or not stale_s:
            return None
        now = clock()
        stale = []
        for source, st in sorted(manager.status().items()):
            if st.provider == OWNERSHIP_KIND:
                continue
            age = now - st.updated_at
            if age > stale_s:
                why = f": {st.error}" if st.error else ""
                stale.append(f"{source} last updated {age:.0f} s ago{why}")
        if stale:
            return f"index stopped updating (older than {stale_s:g} s): " + "; ".join(stale)
        return None

    return check


class LeaseWatch:
    """Reads each stream's lease table every ``interval_s`` (in the daemon's loop) and keeps
    what ``/readyz`` says: the table is readable, and this worker holds a lease or every
    unfinished shard is leased by some worker (more workers than shards is fine)."""

    def __init__(self, consumers: Sequence[StreamConsumer], interval_s: float) -> None:
        self._consumers = list(consumers)
        self._interval_s = interval_s
        self._reason: str | None = "lease tables not read yet"

    def check(self) -> str | None:
        return self._reason

    async def refresh(self) -> None:
        from dredge.sources.kinesis.shards import SHARD_END

        reasons: list[str] = []
        for c in self._consumers:
            try:
                leases = await c.leases.list_leases()
            except Exception as exc:  # a probe: whatever failed is the reason, never a crash
                why = str(exc) if isinstance(exc, DredgeError) else f"{type(exc).__name__}: {exc}"
                reasons.append(f"stream {c.name}: lease table not readable: {why}")
                continue
            if c.leases.held():
                continue
            free = [x.shard_id for x in leases if x.checkpoint != SHARD_END and not x.owner]
            if free:
                reasons.append(f"stream {c.name}: no lease held and {len(free)} shard(s) unleased")
        self._reason = "; ".join(reasons) or None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
