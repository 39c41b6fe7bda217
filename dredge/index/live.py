"""The live IP -> application index: providers' history in, immutable snapshots out.

:class:`IndexManager` keeps the merged history of its providers (an
:class:`~dredge.index.history.EventLog`), rebuilds an :class:`IndexSnapshot` from it in a
worker thread when something changed (debounced), and swaps one reference. A batch calls
``current()`` once and keeps the snapshot it got: a rebuild never touches it, and an update
never waits for a batch nor a batch for an update.

Lifecycle (what the daemon does)::

    manager = IndexManager(IndexConfig(state_path="/var/lib/dredge/index.arrow"))
    manager.add(Ec2Inventory(Ec2Config(regions=("us-east-1",)), manager))
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dredge.errors import ConfigError, OwnerIndexError
from dredge.index import metrics
from dredge.index.build import BuildReport, cidr_tables
from dredge.index.history import EventLog, Events, addr_text
from dredge.index.owners import OWNER_FIELDS, Owner, OwnerCatalog, owner_columns
from dredge.index.prefixes import companions, containing, prefix_source, split_intervals
from dredge.index.snapshot import IndexSnapshot
from dredge.index.state import State, load_state, save_state
from dredge.index.tables import addr_table
from dredge.index.tasks import Provider, Supervisor
from dredge.telemetry import metrics as core_metrics
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class IndexConfig:
    retention_s: float = 24 * 3600.0
    # wait this long after a change before rebuilding, to fold a burst into one rebuild
    debounce_s: float = 1.0
    # rebuild (and so compact) at least this often, even with no change
    compact_interval_s: float = 300.0
    state_path: str = ""  # "" = keep nothing on disk
    save_interval_s: float = 300.0

    def validate(self) -> None:
        if not self.retention_s > 0:
            raise ConfigError("retention_s", "must be > 0")
        if self.debounce_s < 0:
            raise ConfigError("debounce_s", "must be >= 0")
        if not self.compact_interval_s > 0:
            raise ConfigError("compact_interval_s", "must be > 0")
        if not self.save_interval_s > 0:
            raise ConfigError("save_interval_s", "must be > 0")
        if self.state_path and Path(self.state_path).is_dir():
            raise ConfigError("state_path", "is a directory; give a file path")


@dataclass
class SourceStatus:
    """Freshness of one source, for ``dredge index stats``."""

    provider: str
    updated_at: float = 0.0  # last report (poll, read, reload), epoch s
    last_event_at: int = 0  # the latest event time seen
    accepted: int = 0
    too_late: int = 0
    invalid: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SubmitResult:
    accepted: int = 0
    too_late: int = 0
    invalid: int = 0


@dataclass
class _Pending:
    batches: list[tuple[str, Events]] = field(default_factory=list)
    networks: dict[str, pa.Table] = field(default_factory=dict)


class SourceSink:
    """A provider's handle on the manager for one source (thread-safe)."""

    def __init__(self, manager: IndexManager, source: str, provider: str) -> None:
        self._m = manager
        self.source = source
        self.provider = provider

    def submit(self, ips: Sequence[str | None], times: Sequence[int] | np.ndarray,
               owners: Sequence[Owner | None], cursor: Any = None) -> SubmitResult:
        """Assignments (owner) and releases (None) at their own times. ``cursor``, if given,
        is saved with the state that includes these events (see :meth:`cursor`)."""
        return self._m._submit(self, ips, times, owners, cursor)

    def set_networks(self, table: pa.Table) -> None:
        """Replace this source's CIDR map (``cidr`` + owner fields)."""
        self._m._set_networks(self, table)

    def touch(self, error: str | None = None) -> None:
        """Record a report (a poll with no change still counts for freshness)."""
        self._m._touch(self, error)

    def cursor(self) -> Any:
        """The cursor saved with the loaded state, or None."""
        return self._m._cursors.get(self.source)

    def assigned(self) -> dict[str, Owner]:
        """Address -> owner this source holds assigned now (after the loaded state and
        everything submitted since): how a poller picks up after a restart."""
        return self._m._assigned(self.source)

    def prefix_sink(self, length: int) -> SourceSink:
        """The sink of this source's delegated prefixes of one length: submit their network
        addresses (see :mod:`dredge.index.prefixes`)."""
        return self._m.sink(prefix_source(self.source, length), self.provider)

    def assigned_prefixes(self) -> dict[str, Owner]:
        """``network/length`` -> owner for the prefixes this source holds assigned now."""
        with self._m._lock:
            names = set(self._m._log.sources) | {s for s, _ in self._m._pending.batches}
        return {f"{ip}/{n}": o for name, n in companions(self.source, names).items()
                for ip, o in self._m._assigned(name).items()}


class IndexManager:
    """Owns the history, the current snapshot and the providers (see the module doc)."""

    def __init__(self, config: IndexConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config or IndexConfig()
        self.config.validate()
        self.clock = clock
        self._providers: list[Provider] = []
        self._catalog = OwnerCatalog()
        self._log = EventLog.empty()
        self._networks: dict[str, pa.Table] = {}
        self._cursors: dict[str, Any] = {}
        self._status: dict[str, SourceStatus] = {}
        self._lock = threading.Lock()  # pending, catalog, cursors, status
        self._build_lock = threading.Lock()  # one rebuild or save at a time
        self._pending = _Pending()
        self._pending_cursors: dict[str, Any] = {}
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
        with self._lock:
            self._status.setdefault(source, SourceStatus(provider))
        return SourceSink(self, source, provider)

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
        return int(self.clock() - self.config.retention_s)

    def _submit(self, sink: SourceSink, ips: Sequence[str | None], times: Sequence[int] | np.ndarray,
                owners: Sequence[Owner | None], cursor: Any) -> SubmitResult:
        if not (len(ips) == len(times) == len(owners)):
            raise ValueError("ips, times and owners differ in length")
        t = np.asarray(times, np.int64).reshape(-1)
        with self._lock:
            ids = np.array([-1 if o is None else self._catalog.intern(o) for o in owners],
                           np.int32)
            ev = Events.of(ips, t, ids)
            invalid = len(ips) - len(ev)
            fresh = ev.time >= self.cutoff()
            too_late = int((~fresh).sum())
            if too_late:
                ev = ev.take(np.flatnonzero(fresh))
            if len(ev):
                self._pending.batches.append((sink.source, ev))
            if cursor is not None:
                self._pending_cursors[sink.source] = cursor
            st = self._status.setdefault(sink.source, SourceStatus(sink.provider))
            st.accepted += len(ev)
            st.too_late += too_late
            st.invalid += invalid
            st.updated_at = self.clock()
            if len(ev):
                st.last_event_at = max(st.last_event_at, int(ev.time.max()))
        for outcome, n in (("accepted", len(ev)), ("too_late", too_late), ("invalid", invalid)):
            if n:
                metrics.events_total.labels(sink.provider, outcome).inc(n)
        metrics.provider_updated.labels(sink.provider).set(time.time())
        if len(ev) or cursor is not None:
            self._mark_dirty()
        return SubmitResult(len(ev), too_late, invalid)

    def _set_networks(self, sink: SourceSink, table: pa.Table) -> None:
        if "cidr" not in table.column_names:
            raise OwnerIndexError("a CIDR map needs a 'cidr' column")
        with self._lock:
            self._pending.networks[sink.source] = table
            st = self._status.setdefault(sink.source, SourceStatus(sink.provider))
            st.updated_at = self.clock()
            st.accepted = table.num_rows
        self._mark_dirty()

    def _assigned(self, source: str) -> dict[str, Owner]:
        with self._lock:
            batches = [b for b in self._pending.batches if b[0] == source]
            now = self._log.merge(batches).current(source)
            return {ip: self._catalog.row(o) for ip, o in now.items()}

    def _touch(self, sink: SourceSink, error: str | None) -> None:
        with self._lock:
            st = self._status.setdefault(sink.source, SourceStatus(sink.provider))
            st.error = error
            if error is None:
                st.updated_at = self.clock()
        if error is None:
            metrics.provider_updated.labels(sink.provider).set(time.time())

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
            with self._lock:
                pending, self._pending = self._pending, _Pending()
                cursors, self._pending_cursors = self._pending_cursors, {}
            try:
                new_log = self._log.merge(pending.batches).compact(self.cutoff())
                networks = {**self._networks, **pending.networks}
                snap = self._build(new_log, networks)
            except Exception:
                metrics.rebuilds_total.labels("failed").inc()
                with self._lock:  # put the work back: nothing submitted is lost
                    self._pending.batches[:0] = pending.batches
                    self._pending.networks = {**pending.networks, **self._pending.networks}
                    self._pending_cursors = {**cursors, **self._pending_cursors}
                raise
            self._log, self._networks = new_log, networks
            self._cursors.update(cursors)
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
        cidrs: tuple[Any, ...] = ()
        with self._lock:
            if networks:
                nets = pa.concat_tables([owner_columns(t, keep=("cidr",)) for t in networks.values()],
                                        promote_options="permissive")
                net_ids = self._catalog.intern_table(nets)
            owners = self._catalog.table()
        if networks:
            cidrs = cidr_tables(nets, net_ids, BuildReport())
        counts = {name: int((event_log.src == i).sum()) for i, name in enumerate(event_log.sources)}
        counts |= {name: t.num_rows for name, t in networks.items()}
        snap = IndexSnapshot(owners, addrs, cidrs, len(all_iv), time.time(), counts,
                             prefixes=prefixes)
        return snap

    # -- persistence ---------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        state = load_state(path)
        with self._build_lock, self._lock:
            # the saved catalog's ids become ours; anything interned before start is re-mapped
            old_rows = self._catalog.rows()
            self._catalog = state.catalog
            remap = np.array([self._catalog.intern(r) for r in old_rows], np.int32)
            self._pending.batches = [(s, Events(e.fam, e.hi, e.lo, e.time, e.kind,
                                                np.where(e.owner >= 0, remap[np.maximum(e.owner, 0)],
                                                         -1).astype(np.int32)))
                                     for s, e in self._pending.batches]
            self._log = state.log
            self._networks = dict(state.networks)
            self._cursors = dict(state.cursors)
            for name, st in state.sources.items():
                saved, mine = SourceStatus(**st), self._status.get(name)
                if mine is not None:  # counted before the load (sinks made before start)
                    saved.accepted += mine.accepted
                    saved.too_late += mine.too_late
                    saved.invalid += mine.invalid
                self._status[name] = saved
        log.info("index_state_loaded", file=str(path), events=len(state.log),
                 sources=len(state.log.sources), saved_at=state.saved_at)

    def save_now(self) -> int:
        """Write the state file (blocking). Returns its size in bytes."""
        if not self.config.state_path:
            raise OwnerIndexError("no state_path configured")
        path = Path(self.config.state_path)
        with self._build_lock:
            with self._lock:
                state = State(self._log, OwnerCatalog(self._catalog.rows()), dict(self._networks),
                              dict(self._cursors),
                              {k: v.to_json() for k, v in self._status.items()}, self.clock())
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
        m = cls(IndexConfig(retention_s=1e12))
        m._load(path)
        m.rebuild_now()
        return m

    def status(self) -> dict[str, SourceStatus]:
        with self._lock:
            return {k: SourceStatus(**v.to_json()) for k, v in self._status.items()}

    @property
    def history(self) -> EventLog:
        return self._log

    def owner(self, owner_id: int) -> Owner:
        with self._lock:
            return self._catalog.row(owner_id)


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


__all__ = [
    "IndexConfig",
    "IndexManager",
    "SourceSink",
    "SourceStatus",
    "SubmitResult",
    "addr_text",
    "address_history",
]
