"""An immutable snapshot of the IP -> application index, and the vectorized lookup.

A snapshot holds:

- ``owners``: an Arrow table of distinct owner tuples (app, cluster, account, region, az,
  vpc, subnet, type); an owner id is a row number. Row 0 is ``unknown`` (private space
  nobody owns), row 1 is ``internet`` (public space nobody owns).
- ownership segments: per address, non-overlapping [start, end) runs sorted by start,
  reached through an open-addressing hash table keyed by the 128-bit address, whose slot
  holds the latest one itself (layout: :mod:`dredge.index.kernels`);
- CIDR tables, one per prefix length, longest first, for addresses with no owner at t.

Snapshots are never mutated: a provider builds a new one and swaps a reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from dredge.errors import OwnerIndexError
from dredge.flowlog.parser import Addr
from dredge.index import kernels

if TYPE_CHECKING:
    from dredge.index.prefixes import PrefixTables

OWNER_FIELDS = ("app", "cluster", "account", "region", "az", "vpc", "subnet", "type")
UNKNOWN, INTERNET = 0, 1
_FOREVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class AddrTable:
    """Hash tables from addresses to their segments (layout: :mod:`dredge.index.kernels`)."""

    tab4: np.ndarray  # uint32 [address, tail start, tail owner + 2, first segment] per slot
    bits4: int
    tab6: np.ndarray  # uint32 [hi, lo as 4 words, tail start, tail owner + 2, first, 0] per slot
    bits6: int
    seg: np.ndarray  # int32 (n, 3): start, end, owner of the segments before each tail
    base: int  # epoch seconds of relative time 0
    addresses: int = 0
    inline: int = 0  # segments held only in slots (an address's last, still owned)

    @classmethod
    def build(cls, fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, seg_start: np.ndarray,
              seg_end: np.ndarray, seg_owner: np.ndarray) -> AddrTable:
        """Segments sorted by (address, start); fam/hi/lo give each segment's address.

        Times are stored as int32 seconds after the earliest start; an end more than
        ~68 years after it counts as "still owned".
        """
        n = fam.shape[0]
        if n:
            change = np.empty(n, np.bool_)
            change[0] = True
            change[1:] = (fam[1:] != fam[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
            first = np.flatnonzero(change)
        else:
            first = np.zeros(0, np.int64)
        count = np.diff(np.append(first, n))
        base = int(seg_start.min()) if n else 0
        last_end = seg_end[first + count - 1]
        inline = int(np.count_nonzero(last_end >= base + int(kernels.OPEN)))  # still owned
        if n - inline > kernels.MAX_SEGMENTS:
            raise OwnerIndexError(f"more than {kernels.MAX_SEGMENTS} segments")
        seg = kernels.zeros((n - inline, 3), np.int32)
        ffam = fam[first]
        fhash = kernels.addr_hash(ffam, hi[first], lo[first])
        if any(not bool(np.all(h[1:] >= h[:-1])) for h in (fhash[ffam == 4], fhash[ffam == 6])):
            # not in hash order (build.address_order): reorder, then fill front to back
            o = np.argsort(fhash, kind="stable")
            c = count[o]
            rows = np.repeat(first[o] - (np.cumsum(c) - c), c) + np.arange(n)
            return cls.build(fam[rows], hi[rows], lo[rows], seg_start[rows], seg_end[rows],
                             seg_owner[rows])
        pos = 0
        tabs = []
        for f, width, keys in ((4, kernels.W4, 1), (6, kernels.W6, 4)):
            sel = np.flatnonzero(ffam == f)
            bits = kernels.table_bits(sel.size)
            slot = kernels.probe_slots((fhash[sel] >> np.uint64(64 - bits)).astype(np.int64))
            slots = max(1 << bits, int(slot[-1]) + 1 if sel.size else 0) + 1
            tab = kernels.zeros(width * slots, np.uint32)
            a = first[sel]
            pos = kernels.fill_table(tab, width, keys, slot, hi[a], lo[a], a, count[sel],
                                     seg_start, seg_end, seg_owner, base, seg, pos)
            tabs.append((tab, bits))
        (tab4, bits4), (tab6, bits6) = tabs
        return cls(tab4, bits4, tab6, bits6, seg, base, int(first.size), inline)

    def lookup(self, addr: Addr, t: np.ndarray, out: np.ndarray) -> int:
        return int(kernels.lookup(addr.fam, addr.hi, addr.lo, t, self.tab4, self.bits4,
                                  self.tab6, self.bits6, self.seg, self.base, out))

    @property
    def segments(self) -> int:
        return int(self.seg.shape[0]) + self.inline

    @property
    def nbytes(self) -> int:
        return int(self.tab4.nbytes + self.tab6.nbytes + self.seg.nbytes)


@dataclass(frozen=True)
class CidrTable:
    """Networks of one family and one prefix length."""

    fam: int
    prefix: int
    table: AddrTable

    def masks(self) -> tuple[np.uint64, np.uint64]:
        """(hi, lo) masks of the prefix."""
        if self.fam == 6:
            return (_prefix_mask(min(self.prefix, 64), 64),
                    _prefix_mask(self.prefix - 64 if self.prefix > 64 else 0, 64))
        return np.uint64(0), _prefix_mask(self.prefix, 32)

    def mask(self, addr: Addr) -> Addr:
        hm, lm = self.masks()
        fam = np.where(addr.fam == self.fam, addr.fam, np.int8(0)).astype(np.int8)
        return Addr(fam, addr.hi & hm, addr.lo & lm)

    def lookup_pending(self, addr: Addr, out: np.ndarray) -> int:
        """Fill ``out`` where it is < 0 and the address is in one of these networks;
        returns how many rows it filled."""
        hm, lm = self.masks()
        t = self.table
        return int(kernels.lookup_networks(addr.fam, addr.hi, addr.lo, self.fam, hm, lm, t.tab4,
                                           t.bits4, t.tab6, t.bits6, t.seg, t.base, out))


def _prefix_mask(bits: int, width: int) -> np.uint64:
    if bits <= 0:
        return np.uint64(0)
    return np.uint64(((1 << bits) - 1) << (width - bits))


@dataclass(frozen=True)
class LookupStats:
    owner: int = 0
    cidr: int = 0
    unknown: int = 0
    internet: int = 0


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
