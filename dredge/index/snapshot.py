"""An immutable snapshot of the IP -> application index, and the vectorized lookup.

A snapshot holds:

- ``owners``: an Arrow table of distinct owner tuples (:mod:`dredge.index.owners`); an
  owner id is a row number. Row 0 is ``unknown``, row 1 is ``internet``.
- ownership segments: per address, non-overlapping [start, end) runs sorted by start,
  reached through an open-addressing hash table keyed by the 128-bit address
  (:mod:`dredge.index.tables`);
- delegated prefixes, time-versioned like addresses (:mod:`dredge.index.prefixes`);
- CIDR tables, one per prefix length, longest first, for addresses with no owner at t.

Snapshots are never mutated: a provider builds a new one and swaps a reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from dredge.flowlog.parser import Addr
from dredge.index.owners import INTERNET, UNKNOWN
from dredge.index.owners import OWNER_FIELDS as OWNER_FIELDS  # re-exported (home: owners)
from dredge.index.prefixes import PrefixTables
from dredge.index.tables import AddrTable, CidrTable


@dataclass(frozen=True)
class LookupStats:
    """How one lookup's addresses were answered; add them up to count many lookups."""

    owner: int = 0
    cidr: int = 0
    unknown: int = 0
    internet: int = 0

    def __add__(self, other: LookupStats) -> LookupStats:
        return LookupStats(self.owner + other.owner, self.cidr + other.cidr,
                           self.unknown + other.unknown, self.internet + other.internet)

    @property
    def lookups(self) -> int:
        return self.owner + self.cidr + self.unknown + self.internet


@dataclass(frozen=True)
class IndexSnapshot:
    owners: pa.Table
    addrs: AddrTable
    cidrs: tuple[CidrTable, ...] = ()
    intervals: int = 0
    built_at: float = 0.0
    sources: dict[str, int] = field(default_factory=dict)
    prefixes: PrefixTables | None = None  # delegated prefixes, time-versioned (live index)

    def lookup(self, addr: Addr, t: np.ndarray) -> tuple[np.ndarray, LookupStats]:
        """Owner id of each address at each time (t in epoch seconds)."""
        n = addr.fam.shape[0]
        out = np.empty(n, np.int32)
        t64 = t.astype(np.int64, copy=False)
        hits = self.addrs.lookup(addr, t64, out)
        miss = np.flatnonzero(out < 0)
        if miss.size and self.prefixes is not None:  # owned through a prefix at t: an owner hit
            got = self.prefixes.lookup(addr.take(miss), t64[miss])
            out[miss] = got
            hits += int((got >= 0).sum())
            miss = miss[got < 0]
        cidr_hits = 0
        if miss.size and self.cidrs:
            sub = addr.take(miss)
            sub_out = np.full(miss.size, -1, np.int32)
            left = int(miss.size)
            for c in self.cidrs:  # longest prefix first
                if not left:
                    break
                left -= c.lookup_pending(sub, sub_out)
            cidr_hits = int(miss.size) - left
            out[miss] = sub_out
            miss = miss[sub_out < 0]
        if miss.size:
            private = is_private(addr.take(miss))
            out[miss] = np.where(private, UNKNOWN, INTERNET)
            n_unknown = int(private.sum())
        else:
            n_unknown = 0
        return out, LookupStats(hits, cidr_hits, n_unknown, int(miss.size) - n_unknown)

    @property
    def nbytes(self) -> int:
        return int(self.addrs.nbytes + sum(c.table.nbytes for c in self.cidrs) + self.owners.nbytes
                   + (self.prefixes.nbytes if self.prefixes is not None else 0))


def is_private(addr: Addr) -> np.ndarray:
    """RFC 1918, 100.64.0.0/10 (CGNAT) and fc00::/7; null addresses count as private (unknown)."""
    lo = addr.lo
    v4 = addr.fam == 4
    p4 = (
        ((lo >> np.uint64(24)) == 10)
        | ((lo >> np.uint64(20)) == 0xAC1)  # 172.16.0.0/12
        | ((lo >> np.uint64(16)) == 0xC0A8)  # 192.168.0.0/16
        | ((lo >> np.uint64(22)) == 0x191)  # 100.64.0.0/10
    )
    p6 = (addr.hi >> np.uint64(57)) == 0x7E  # fc00::/7
    return np.where(v4, p4, np.where(addr.fam == 6, p6, True))


__all__ = ["OWNER_FIELDS", "IndexSnapshot", "LookupStats", "is_private"]
