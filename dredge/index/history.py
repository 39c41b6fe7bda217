"""Ownership history as assignment events, per source: merge, derive intervals, compact, save.

Every provider speaks one language: *address A was assigned to owner O at t* and *address
A was released at t*. A source (``ec2/123456789012/us-east-1``, ``events/file``) keeps its
events in an :class:`EventLog`; the intervals are derived, never stored: within a source
and an address, events sorted by (time, release before assignment, arrival) and each
assignment owns the address until the next event (or for good, if there is none). So an
event that arrives late simply sorts into place: history at its own time.

Between sources, intervals that overlap are settled by the snapshot build: the latest
start wins.

Compaction (with a cutoff = now - retention) drops what cannot matter for a lookup at or
after the cutoff: assignments that ended at or before it, releases at or before it, and
exact duplicates. Events older than the cutoff are refused on arrival (``too_late``), which
keeps compaction safe against late events.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dredge.flowlog.parser import parse_addresses
from dredge.index import kernels

RELEASE, ASSIGN = 0, 1
FOREVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Events:
    """A batch of events as columns. ``owner`` is a catalog id, -1 for a release."""

    fam: np.ndarray  # int8
    hi: np.ndarray  # uint64
    lo: np.ndarray  # uint64
    time: np.ndarray  # int64 epoch s
    kind: np.ndarray  # int8: RELEASE / ASSIGN
    owner: np.ndarray  # int32

    def __len__(self) -> int:
        return int(self.fam.shape[0])

    @staticmethod
    def empty() -> Events:
        return Events(np.zeros(0, np.int8), np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                      np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int32))

    @staticmethod
    def of(ips: Sequence[str | None], times: Sequence[int] | np.ndarray,
           owners: Sequence[int] | np.ndarray) -> Events:
        """From address text, epoch seconds and owner ids (-1 = release). Bad addresses are
        dropped; use :meth:`valid` first to count them."""
        addr = parse_addresses(pa.array(ips, pa.string()))
        owner = np.asarray(owners, np.int32).reshape(-1)
        ev = Events(addr.fam, addr.hi, addr.lo, np.asarray(times, np.int64).reshape(-1),
                    np.where(owner >= 0, ASSIGN, RELEASE).astype(np.int8), owner)
        return ev.take(np.flatnonzero(ev.fam > 0))

    def remap_owners(self, remap: np.ndarray) -> Events:
        """The events with owner ids mapped through ``remap`` (old id -> new id)."""
        owner = np.where(self.owner >= 0, remap[np.maximum(self.owner, 0)], -1).astype(np.int32)
        return Events(self.fam, self.hi, self.lo, self.time, self.kind, owner)

    def take(self, idx: np.ndarray) -> Events:
        return Events(self.fam[idx], self.hi[idx], self.lo[idx], self.time[idx], self.kind[idx],
                      self.owner[idx])

    @staticmethod
    def concat(parts: Sequence[Events]) -> Events:
        if not parts:
            return Events.empty()
        return Events(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("fam", "hi", "lo", "time", "kind", "owner")))


@dataclass(frozen=True)
class Intervals:
    """Derived ownership intervals, sorted by (source, address, start); end FOREVER = open."""

    src: np.ndarray  # int16
    fam: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    start: np.ndarray
    end: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return int(self.fam.shape[0])


@dataclass(frozen=True)
class EventLog:
    """All sources' events, sorted by (source, address, time, kind, arrival). Immutable:
    merging and compacting return a new log, so a reader never sees one change."""

    sources: tuple[str, ...]
    src: np.ndarray  # int16, index into sources
    events: Events
    seq: np.ndarray  # int64 arrival order
    next_seq: int = 0

    @staticmethod
    def empty() -> EventLog:
        return EventLog((), np.zeros(0, np.int16), Events.empty(), np.zeros(0, np.int64), 0)

    def __len__(self) -> int:
        return len(self.events)

    def source_id(self, name: str) -> int:
        return self.sources.index(name)

    def merge(self, batches: Sequence[tuple[str, Events]]) -> EventLog:
        """The log with the batches added (in order: arrival order within a batch)."""
        batches = [(s, e) for s, e in batches if len(e)]
        if not batches:
            return self
        sources = list(self.sources)
        for name, _ in batches:
            if name not in sources:
                sources.append(name)
        new_src = np.concatenate([np.full(len(e), sources.index(n), np.int16) for n, e in batches])
        new_ev = Events.concat([e for _, e in batches])
        n_new = len(new_ev)
        new_seq = np.arange(self.next_seq, self.next_seq + n_new, dtype=np.int64)
        o = np.lexsort(_sort_keys(new_src, new_ev, new_seq)[::-1])
        new_src, new_ev, new_seq = new_src[o], new_ev.take(o), new_seq[o]
        # the log is sorted already: merge the two runs (old first on equal keys: lower seq)
        order = kernels.merge_sorted(*_sort_keys(self.src, self.events, self.seq),
                                     *_sort_keys(new_src, new_ev, new_seq))
        s = np.concatenate([self.src, new_src])[order]
        ev = Events.concat([self.events, new_ev]).take(order)
        seq = np.concatenate([self.seq, new_seq])[order]
        return EventLog(tuple(sources), s, ev, seq, self.next_seq + n_new)

    def _next_in_group(self) -> tuple[np.ndarray, np.ndarray]:
        """(same group as the next row, same group as the previous row)."""
        n = len(self)
        e = self.events
        same_next = np.zeros(n, np.bool_)
        if n > 1:
            same_next[:-1] = ((self.src[1:] == self.src[:-1]) & (e.fam[1:] == e.fam[:-1])
                              & (e.hi[1:] == e.hi[:-1]) & (e.lo[1:] == e.lo[:-1]))
        same_prev = np.zeros(n, np.bool_)
        same_prev[1:] = same_next[:-1]
        return same_next, same_prev

    def intervals(self) -> Intervals:
        e = self.events
        same_next, _ = self._next_in_group()
        end = np.full(len(self), FOREVER, np.int64)
        if len(self) > 1:
            end[:-1] = np.where(same_next[:-1], e.time[1:], FOREVER)
        keep = np.flatnonzero((e.kind == ASSIGN) & (end > e.time))
        return Intervals(self.src[keep], e.fam[keep], e.hi[keep], e.lo[keep], e.time[keep],
                         end[keep], e.owner[keep])

    def compact(self, cutoff: int) -> EventLog:
        """Drop what no lookup at t >= cutoff, now or after any accepted late event, needs."""
        e = self.events
        same_next, same_prev = self._next_in_group()
        n = len(self)
        nxt = np.full(n, FOREVER, np.int64)
        if n > 1:
            nxt[:-1] = np.where(same_next[:-1], e.time[1:], FOREVER)
        expired = np.where(e.kind == ASSIGN, nxt <= cutoff, e.time <= cutoff)
        dup = np.zeros(n, np.bool_)
        if n > 1:
            dup[1:] = (same_prev[1:] & (e.time[1:] == e.time[:-1]) & (e.kind[1:] == e.kind[:-1])
                       & (e.owner[1:] == e.owner[:-1]))
        keep = np.flatnonzero(~(expired | dup))
        if keep.size == n:
            return self
        return EventLog(self.sources, self.src[keep], e.take(keep), self.seq[keep], self.next_seq)

    def remap_owners(self, remap: np.ndarray) -> EventLog:
        return EventLog(self.sources, self.src, self.events.remap_owners(remap), self.seq,
                        self.next_seq)

    def current(self, source: str) -> dict[str, int]:
        """Address text -> owner id for the addresses the source holds assigned now (its
        last event is an assignment)."""
        if source not in self.sources:
            return {}
        sid = self.source_id(source)
        same_next, _ = self._next_in_group()
        rows = np.flatnonzero((self.src == sid) & ~same_next & (self.events.kind == ASSIGN))
        e = self.events.take(rows)
        return dict(zip(addr_text(e.fam, e.hi, e.lo), e.owner.tolist(), strict=True))


def _sort_keys(src: np.ndarray, ev: Events, seq: np.ndarray) -> tuple[np.ndarray, ...]:
    """The log's sort key, most significant first: (source, family), hi, lo, (time, kind),
    arrival. A release sorts before an assignment at the same second: "released and
    re-assigned at t" leaves the new owner in place, whatever order the two arrived in.
    64-bit keys: what ``kernels.merge_sorted`` takes without a copy."""
    return (src.astype(np.int64) * 8 + ev.fam, ev.hi, ev.lo, ev.time * 2 + ev.kind, seq)


def addr_text(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Address columns back to text (for small outputs: the CLI, seeding a poller)."""
    out = []
    for f, h, low in zip(fam.tolist(), hi.tolist(), lo.tolist(), strict=True):
        out.append(str(ipaddress.IPv4Address(low) if f == 4 else ipaddress.IPv6Address((h << 64) | low)))
    return out
