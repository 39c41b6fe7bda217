"""The live IP -> application index: providers' history in, immutable snapshots out.

:class:`IndexManager` keeps the merged history of its providers (an
:class:`~dredge.index.history.EventLog`), rebuilds an :class:`IndexSnapshot` from it in a
worker thread when something changed (debounced), and swaps one reference. A batch calls
``current()`` once and keeps the snapshot it got: a rebuild never touches it, and an update
never waits for a batch nor a batch for an update. What providers submit waits in the
manager's :class:`~dredge.index.intake.Intake` until a rebuild takes it.

Lifecycle (what the daemon does; providers: :mod:`dredge.index.providers`)::

    manager = IndexManager(LiveConfig(state_path="/var/lib/dredge/index.arrow"))
    manager.add(Ec2Inventory(Ec2Config(regions=["us-east-1"]), manager))
    manager.add(AssignmentFile(EventFileConfig(path="/var/run/tasks.jsonl"), manager))
    manager.add(CidrFiles(CidrConfig(paths=("networks.csv", "ip-ranges.json")), manager))
    await manager.start()   # load the saved state, start providers, first snapshot
    snap = manager.current()  # once per batch; raises OwnerIndexError if a provider crashed
    await manager.stop()    # stop providers, last rebuild, save (idempotent)

History older than ``retention_s`` is compacted away at each rebuild; the state is saved
every ``save_interval_s`` and on stop, and loaded at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dredge.errors import OwnerIndexError
from dredge.index import metrics
from dredge.index.build import BuildReport, cidr_tables
from dredge.index.config import LiveConfig
from dredge.index.history import EventLog
from dredge.index.intake import Intake, Provider, SourceSink, SourceStatus
from dredge.index.owners import OWNER_FIELDS, Owner, owner_columns
from dredge.index.prefixes import containing, split_intervals
from dredge.index.snapshot import IndexSnapshot
from dredge.index.state import load_state, save_state
from dredge.index.supervisor import Supervisor
from dredge.index.tables import addr_table
from dredge.telemetry import metrics as core_metrics
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


class IndexManager:
    """Owns the history, the current snapshot and the providers (see the module doc)."""

    def __init__(self, config: LiveConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config or LiveConfig()
        self.config.validate()
        self.clock = clock
        self._providers: list[Provider] = []
        self._log = EventLog.empty()
        self._networks: dict[str, pa.Table] = {}
        self.intake = Intake(clock, self.config.retention_s, lambda: self._log, self._mark_dirty)
        self._build_lock = threading.Lock()  # one rebuild or save at a time
        self._snapshot = self._build(self._log, {})
        self._tasks = Supervisor("index")
        self._dirty: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopped = False
        self.last_build_seconds = 0.0

    # -- the protocol the daemon reads ---------------------------------------------------

    def current(self) -> IndexSnapshot:
        """The snapshot to enrich one batch with. Raises if the index stopped updating."""
        failed = self.failure
        if failed is not None:
            raise OwnerIndexError(f"the index stopped updating: {failed!r}") from failed
        return self._snapshot

    @property
    def failure(self) -> BaseException | None:
        if self._tasks.failure is not None:
            return self._tasks.failure
        for p in self._providers:
            if p.failure is not None:
                return p.failure
        return None

    # -- wiring --------------------------------------------------------------------------

    def add(self, provider: Provider) -> None:
        if self._started:
            raise OwnerIndexError("add providers before start()")
        self._providers.append(provider)

    def sink(self, source: str, provider: str) -> SourceSink:
        """The handle a provider submits one source's events and maps through."""
        return self.intake.sink(source, provider)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        path = Path(self.config.state_path) if self.config.state_path else None
        if path is not None and path.exists():
            await asyncio.to_thread(self._load, path)
        self._dirty = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._tasks.spawn(self._rebuild_loop(), "rebuild")
        if path is not None:
            self._tasks.spawn(self._save_loop(), "save")
        for p in self._providers:
            await p.start()
        # The first snapshot holds the saved state AND what each provider read while starting
        # (first EC2 poll, events file, CIDR maps): the daemon's first batch must not see an
        # index still waiting for its debounced rebuild.
        await asyncio.to_thread(self.rebuild_now)
        log.info("index_started", providers=len(self._providers), events=len(self._log),
                 intervals=self._snapshot.intervals)

    async def stop(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        for p in reversed(self._providers):
            try:
                await p.stop()
            except Exception as exc:  # keep stopping the others; the state still gets saved
                log.error("index_provider_stop_failed", provider=p.name, error=repr(exc))
        await self._tasks.close()
        await asyncio.to_thread(self.rebuild_now)
        if self.config.state_path:
            await asyncio.to_thread(self.save_now)
        log.info("index_stopped", events=len(self._log))

    async def __aenter__(self) -> IndexManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- providers' side (any thread) ----------------------------------------------------

    def cutoff(self) -> int:
        """Events before this (epoch s) are refused: now - retention."""
        return self.intake.cutoff()

    def _mark_dirty(self) -> None:
        loop = self._loop
        if loop is not None and self._dirty is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dirty.set)  # from the loop or a worker thread

    # -- rebuilding ----------------------------------------------------------------------

    async def _rebuild_loop(self) -> None:
        assert self._dirty is not None
        while True:
            with contextlib.suppress(TimeoutError):  # compact now and then, even if idle
                await asyncio.wait_for(self._dirty.wait(), self.config.compact_interval_s)
            await asyncio.sleep(self.config.debounce_s)
            self._dirty.clear()
            await asyncio.to_thread(self.rebuild_now)

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.save_interval_s)
            try:
                await asyncio.to_thread(self.save_now)
            except OwnerIndexError as exc:  # a full disk must not stop enrichment
                log.error("index_save_failed", error=str(exc))

    def rebuild_now(self) -> IndexSnapshot:
        """Merge what providers submitted, compact, build and swap (blocking; the loop runs
        it in a worker thread). Returns the new snapshot."""
        with self._build_lock:
            t0 = time.perf_counter()
            pending = self.intake.take()
            try:
                new_log = self._log.merge(pending.batches).compact(self.cutoff())
                networks = {**self._networks, **pending.networks}
                snap = self._build(new_log, networks)
            except Exception:
                metrics.rebuilds_total.labels("failed").inc()
                self.intake.put_back(pending)
                raise
            self._log, self._networks = new_log, networks
            self.intake.cursors.update(pending.cursors)
            self._snapshot = snap  # the swap
            self.last_build_seconds = time.perf_counter() - t0
        metrics.rebuilds_total.labels("ok").inc()
        metrics.rebuild_seconds.observe(self.last_build_seconds)
        metrics.history_events.set(len(new_log))
        metrics.snapshot_bytes.set(snap.nbytes)
        metrics.snapshot_age_seconds.set(snap.built_at)
        core_metrics.index_intervals.set(snap.intervals)
        return snap

    def _build(self, event_log: EventLog, networks: dict[str, pa.Table]) -> IndexSnapshot:
        all_iv = event_log.intervals()
        iv, prefixes = split_intervals(all_iv, event_log.sources)  # delegated prefixes apart
        addrs = addr_table(iv.fam, iv.hi, iv.lo, iv.start, iv.end, iv.owner)
        nets = pa.concat_tables([owner_columns(t, keep=("cidr",)) for t in networks.values()],
                                promote_options="permissive") if networks else None
        owners, net_ids = self.intake.owners(nets)
        cidrs = cidr_tables(nets, net_ids, BuildReport()) if nets is not None and net_ids is not None \
            else ()
        counts = {name: int((event_log.src == i).sum()) for i, name in enumerate(event_log.sources)}
        counts |= {name: t.num_rows for name, t in networks.items()}
        snap = IndexSnapshot(owners, addrs, cidrs, len(all_iv), time.time(), counts,
                             prefixes=prefixes)
        return snap

    # -- persistence ---------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        state = load_state(path)
        with self._build_lock:
            self.intake.load(state)
            self._log = state.log
            self._networks = dict(state.networks)
        log.info("index_state_loaded", file=str(path), events=len(state.log),
                 sources=len(state.log.sources), saved_at=state.saved_at)

    def save_now(self) -> int:
        """Write the state file (blocking). Returns its size in bytes."""
        if not self.config.state_path:
            raise OwnerIndexError("no state_path configured")
        path = Path(self.config.state_path)
        with self._build_lock:
            state = self.intake.state(self._log, self._networks)
            try:
                size = save_state(path, state)
            except OwnerIndexError:
                metrics.saves_total.labels("failed").inc()
                raise
        metrics.saves_total.labels("ok").inc()
        log.info("index_state_saved", file=str(path), events=len(state.log), bytes=size)
        return size

    # -- introspection (CLI, stats) ------------------------------------------------------

    @classmethod
    def from_state(cls, path: Path) -> IndexManager:
        """A manager holding a saved state as it was, for inspection (nothing compacted)."""
        m = cls(LiveConfig(retention_s=1e12))
        m._load(path)
        m.rebuild_now()
        return m

    def status(self) -> dict[str, SourceStatus]:
        return self.intake.statuses()

    @property
    def history(self) -> EventLog:
        return self._log

    def owner(self, owner_id: int) -> Owner:
        return self.intake.owner(owner_id)


def address_history(event_log: EventLog, catalog_row: Callable[[int], Owner], ip: str
                    ) -> list[dict[str, Any]]:
    """Every interval of one address, all sources, oldest first (for ``dredge index lookup``)."""
    from dredge.flowlog.parser import parse_addresses

    a = parse_addresses(pa.array([ip]))
    iv = event_log.intervals()
    rows = containing(iv, event_log.sources, int(a.fam[0]), int(a.hi[0]), int(a.lo[0]))
    rows = rows[np.argsort(iv.start[rows], kind="stable")]
    out = []
    for r in rows.tolist():
        end = int(iv.end[r])
        out.append({"source": event_log.sources[int(iv.src[r])], "start": int(iv.start[r]),
                    "end": None if end == np.iinfo(np.int64).max else end,
                    **dict(zip(OWNER_FIELDS, catalog_row(int(iv.owner[r])), strict=True))})
    return out


__all__ = ["IndexManager", "address_history"]
