"""The providers' side of the live index: what they hand in, kept until a rebuild takes it.

A provider gets one :class:`SourceSink` per source and submits assignment events, CIDR maps
and freshness reports through it, from any thread. The :class:`Intake` behind the sinks
holds, under one lock and without I/O: the pending event batches and CIDR maps, the
providers' cursors (pending and saved), each source's :class:`SourceStatus`, and the owner
catalog the events' ids refer to. The index manager (:mod:`dredge.index.live`) takes the
pending work at each rebuild and puts it back if the rebuild fails.

:class:`Provider` is what the manager starts and stops; every built-in provider follows it
(see :mod:`dredge.index.providers`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from dredge.errors import OwnerIndexError
from dredge.index import metrics
from dredge.index.history import EventLog, Events
from dredge.index.owners import Owner, OwnerCatalog
from dredge.index.prefixes import companions, prefix_source
from dredge.index.state import State


class Provider(Protocol):
    """What the index manager starts and stops: EC2 inventory, assignment events, CIDR maps,
    ownership files. ``start()`` returns once what it read while starting is submitted (so
    it is in the first snapshot); ``failure`` is the crash that stopped it, if any."""

    name: str  # the provider kind: the metric label, bounded

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    @property
    def failure(self) -> BaseException | None: ...


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
class Pending:
    """Work submitted since the last rebuild."""

    batches: list[tuple[str, Events]] = field(default_factory=list)
    networks: dict[str, pa.Table] = field(default_factory=dict)
    cursors: dict[str, Any] = field(default_factory=dict)


class SourceSink:
    """A provider's handle on the index for one source (thread-safe)."""

    def __init__(self, intake: Intake, source: str, provider: str) -> None:
        self._intake = intake
        self.source = source
        self.provider = provider

    def submit(self, ips: Sequence[str | None], times: Sequence[int] | np.ndarray,
               owners: Sequence[Owner | None], cursor: Any = None) -> SubmitResult:
        """Assignments (owner) and releases (None) at their own times. ``cursor``, if given,
        is saved with the state that includes these events (see :meth:`cursor`)."""
        return self._intake.submit(self, ips, times, owners, cursor)

    def set_networks(self, table: pa.Table) -> None:
        """Replace this source's CIDR map (``cidr`` + owner fields)."""
        self._intake.set_networks(self, table)

    def touch(self, error: str | None = None) -> None:
        """Record a report (a poll with no change still counts for freshness)."""
        self._intake.touch(self, error)

    def cursor(self) -> Any:
        """The cursor saved with the loaded state, or None."""
        return self._intake.cursors.get(self.source)

    def assigned(self) -> dict[str, Owner]:
        """Address -> owner this source holds assigned now (after the loaded state and
        everything submitted since): how a poller picks up after a restart."""
        return self._intake.assigned(self.source)

    def prefix_sink(self, length: int) -> SourceSink:
        """The sink of this source's delegated prefixes of one length: submit their network
        addresses (see :mod:`dredge.index.prefixes`)."""
        return self._intake.sink(prefix_source(self.source, length), self.provider)

    def assigned_prefixes(self) -> dict[str, Owner]:
        """``network/length`` -> owner for the prefixes this source holds assigned now."""
        names = self._intake.source_names()
        return {f"{ip}/{n}": o for name, n in companions(self.source, names).items()
                for ip, o in self._intake.assigned(name).items()}


class Intake:
    """Pending work, cursors, freshness and the owner catalog (see the module doc).

    ``history`` returns the manager's current event log (for :meth:`assigned`); ``changed``
    is called after anything was submitted (the manager schedules a rebuild)."""

    def __init__(self, clock: Callable[[], float], retention_s: float,
                 history: Callable[[], EventLog], changed: Callable[[], None]) -> None:
        self.clock = clock
        self.retention_s = retention_s
        self._history = history
        self._changed = changed
        self.lock = threading.Lock()  # everything below
        self.catalog = OwnerCatalog()
        self.cursors: dict[str, Any] = {}  # saved with the state
        self.status: dict[str, SourceStatus] = {}
        self._pending = Pending()

    def cutoff(self) -> int:
        return int(self.clock() - self.retention_s)

    def sink(self, source: str, provider: str) -> SourceSink:
        with self.lock:
            self.status.setdefault(source, SourceStatus(provider))
        return SourceSink(self, source, provider)

    def _status(self, sink: SourceSink) -> SourceStatus:
        return self.status.setdefault(sink.source, SourceStatus(sink.provider))

    # -- from providers (any thread) -----------------------------------------------------

    def submit(self, sink: SourceSink, ips: Sequence[str | None],
               times: Sequence[int] | np.ndarray, owners: Sequence[Owner | None],
               cursor: Any) -> SubmitResult:
        if not (len(ips) == len(times) == len(owners)):
            raise ValueError("ips, times and owners differ in length")
        t = np.asarray(times, np.int64).reshape(-1)
        with self.lock:
            ids = np.array([-1 if o is None else self.catalog.intern(o) for o in owners],
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
                self._pending.cursors[sink.source] = cursor
            st = self._status(sink)
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
            self._changed()
        return SubmitResult(len(ev), too_late, invalid)

    def submit_events(self, source: str, events: Events) -> None:
        """Events already in columns, owners as ids of :attr:`catalog` (bulk loads and
        benchmarks; no retention check, no freshness counted)."""
        with self.lock:
            self._pending.batches.append((source, events))
        self._changed()

    def set_networks(self, sink: SourceSink, table: pa.Table) -> None:
        if "cidr" not in table.column_names:
            raise OwnerIndexError("a CIDR map needs a 'cidr' column")
        with self.lock:
            self._pending.networks[sink.source] = table
            st = self._status(sink)
            st.updated_at = self.clock()
            st.accepted = table.num_rows
        self._changed()

    def touch(self, sink: SourceSink, error: str | None) -> None:
        with self.lock:
            st = self._status(sink)
            st.error = error
            if error is None:
                st.updated_at = self.clock()
        if error is None:
            metrics.provider_updated.labels(sink.provider).set(time.time())

    def assigned(self, source: str) -> dict[str, Owner]:
        with self.lock:
            batches = [b for b in self._pending.batches if b[0] == source]
            now = self._history().merge(batches).current(source)
            return {ip: self.catalog.row(o) for ip, o in now.items()}

    def source_names(self) -> set[str]:
        with self.lock:
            return set(self._history().sources) | {s for s, _ in self._pending.batches}

    # -- from the manager ----------------------------------------------------------------

    def take(self) -> Pending:
        """The work submitted since the last call (for a rebuild)."""
        with self.lock:
            pending, self._pending = self._pending, Pending()
        return pending

    def put_back(self, pending: Pending) -> None:
        """A rebuild failed: its work goes back in front, nothing submitted is lost."""
        with self.lock:
            self._pending.batches[:0] = pending.batches
            self._pending.networks = {**pending.networks, **self._pending.networks}
            self._pending.cursors = {**pending.cursors, **self._pending.cursors}

    def load(self, state: State) -> None:
        """Adopt a saved state's catalog, cursors and freshness; what was submitted before
        (sinks made before start) is re-mapped to the saved catalog's ids and counted on."""
        with self.lock:
            old_rows = self.catalog.rows()
            self.catalog = state.catalog
            remap = np.array([self.catalog.intern(r) for r in old_rows], np.int32)
            self._pending.batches = [(s, e.remap_owners(remap))
                                     for s, e in self._pending.batches]
            self.cursors = dict(state.cursors)
            for name, st in state.sources.items():
                saved, mine = SourceStatus(**st), self.status.get(name)
                if mine is not None:
                    saved.accepted += mine.accepted
                    saved.too_late += mine.too_late
                    saved.invalid += mine.invalid
                self.status[name] = saved

    def state(self, log: EventLog, networks: dict[str, pa.Table]) -> State:
        """What to save: the history and CIDR maps given, with a copy of the rest."""
        with self.lock:
            return State(log, OwnerCatalog(self.catalog.rows()), dict(networks),
                         dict(self.cursors), {k: v.to_json() for k, v in self.status.items()},
                         self.clock())

    def owners(self, networks: pa.Table | None) -> tuple[pa.Table, np.ndarray | None]:
        """The catalog as a table, after interning the owners of ``networks`` (and their ids)."""
        with self.lock:
            ids = self.catalog.intern_table(networks) if networks is not None else None
            return self.catalog.table(), ids

    def statuses(self) -> dict[str, SourceStatus]:
        with self.lock:
            return {k: SourceStatus(**v.to_json()) for k, v in self.status.items()}

    def owner(self, owner_id: int) -> Owner:
        with self.lock:
            return self.catalog.row(owner_id)


__all__ = ["Intake", "Pending", "Provider", "SourceSink", "SourceStatus", "SubmitResult"]
