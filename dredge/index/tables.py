"""The hash tables of the index: addresses (or networks) -> time segments -> owner id.

:class:`AddrTable` holds, per address, non-overlapping [start, end) segments and the owner
of each, in the compiled layout of :mod:`dredge.index.kernels.layout`; :func:`addr_table`
builds one from intervals that may overlap (the latest start wins). :class:`CidrTable` is
an :class:`AddrTable` of the networks of one family and prefix length (CIDR maps,
delegated prefixes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dredge.errors import OwnerIndexError
from dredge.flowlog.parser import Addr
from dredge.index import kernels


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



def address_order(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: np.ndarray
                  ) -> np.ndarray:
    """Row order with each address's rows together, by start (ties: arrival order).

    Addresses come in hash order (:func:`kernels.addr_hash`), which is the order of their
    slots in the table: :meth:`AddrTable.build` then writes front to back instead of at
    random; one sort by hash and short sorts of each address's rows are cheaper than a
    four-key lexsort.
    """
    h = kernels.addr_hash(fam, hi, lo)
    order = np.argsort(h, kind="stable")
    if kernels.sort_runs(order, h, fam, hi, lo, start):
        return order
    # two addresses share a hash (IPv6, or across families): sort fully
    return np.lexsort((start, lo, hi, fam))


def addr_table(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: np.ndarray,
               end: np.ndarray, owner: np.ndarray) -> AddrTable:
    """Valid intervals (end > start, end = int64 max for open) in arrival order -> AddrTable.

    Where intervals of one address overlap, the latest start wins (ties: the later row).
    """
    n = fam.size
    order = address_order(fam, hi, lo, start)
    fam, hi, lo, st, en, ow = (a[order] for a in (fam, hi, lo, start, end, owner))
    change = np.ones(n, np.bool_)
    if n:
        change[1:] = (fam[1:] != fam[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    group = np.cumsum(change) - 1
    g, s, e, o = kernels.flatten(group, st, en, ow)
    gf = np.flatnonzero(change)[g]
    return AddrTable.build(fam[gf], hi[gf], lo[gf], s, e, o)


__all__ = ["AddrTable", "CidrTable", "addr_table", "address_order"]
