"""Compiled kernels of the index: flatten overlapping intervals, hash addresses, look up.

The owner of an address at time t is found with one hash probe (address -> its run of
segments) and a short search among that address's segments: no per-flow Python.

Layout (chosen for memory and cache misses; see docs/index.md):

- one open-addressing table per family, linear probing, sized to a power of two at least
  1.5x the number of addresses. An IPv4 slot is two uint64 words ``[address, run]``, an IPv6
  slot three ``[hi, lo, run]``; ``run = first_segment << 24 | count`` (0 = empty slot), so a
  probe that hits reads one cache line and goes straight to the segments;
- segments as rows of three int32 ``[start, end, owner]`` with times relative to the
  table's ``base`` (the earliest start), ``end == OPEN`` for "still owned": 12 bytes each.
"""

from __future__ import annotations

import contextlib
import mmap

import numpy as np
from numba import njit

OPEN = np.int32(np.iinfo(np.int32).max)
MAX_RUN = (1 << 24) - 1
_HUGE_PAGE = 2 << 20
_HUGE_MIN = 8 << 20
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)


@njit(cache=True, nogil=True)
def flatten(group: np.ndarray, start: np.ndarray, end: np.ndarray, owner: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals sorted by (group, start, arrival) -> non-overlapping segments per group.

    Where intervals overlap, the one with the latest start owns the time (ties: the one
    that arrived last). Adjacent segments with the same owner are merged.
    Returns (group, seg_start, seg_end, seg_owner).
    """
    n = group.shape[0]
    cap = 2 * n + 1
    og = np.empty(cap, np.int64)
    os_ = np.empty(cap, np.int64)
    oe = np.empty(cap, np.int64)
    oo = np.empty(cap, np.int32)
    stack = np.empty(max(n, 1), np.int64)
    m = 0
    a = 0
    while a < n:
        b = a
        while b < n and group[b] == group[a]:
            b += 1
        g = group[a]
        sp = 0
        cur = start[a]
        for j in range(a, b + 1):
            t = start[j] if j < b else np.iinfo(np.int64).max
            while sp > 0:
                top = stack[sp - 1]
                if end[top] <= t:
                    if end[top] > cur:
                        # emit [cur, end[top]) for owner[top]
                        if m > 0 and og[m - 1] == g and oe[m - 1] == cur and oo[m - 1] == owner[top]:
                            oe[m - 1] = end[top]
                        else:
                            og[m] = g
                            os_[m] = cur
                            oe[m] = end[top]
                            oo[m] = owner[top]
                            m += 1
                        cur = end[top]
                    sp -= 1
                else:
                    break
            if j == b:
                break
            if sp > 0 and t > cur:
                top = stack[sp - 1]
                if m > 0 and og[m - 1] == g and oe[m - 1] == cur and oo[m - 1] == owner[top]:
                    oe[m - 1] = t
                else:
                    og[m] = g
                    os_[m] = cur
                    oe[m] = t
                    oo[m] = owner[top]
                    m += 1
            stack[sp] = j
            sp += 1
            if t > cur or sp == 1:
                cur = t
        a = b
    return og[:m].copy(), os_[:m].copy(), oe[:m].copy(), oo[:m].copy()


@njit(cache=True, nogil=True, inline="always")
def _slot4(lo: np.uint64, shift: np.uint64) -> np.int64:
    return np.int64((lo * _K1) >> shift)


@njit(cache=True, nogil=True, inline="always")
def _slot6(hi: np.uint64, lo: np.uint64, shift: np.uint64) -> np.int64:
    h = (lo * _K1) ^ (hi * _K2)
    h ^= h >> np.uint64(31)
    return np.int64((h * _K1) >> shift)


def zeros(shape: int | tuple[int, ...], dtype: type) -> np.ndarray:
    """Zeroed array; a large one on transparent huge pages where the kernel allows it
    (``madvise``): random probes then miss the TLB far less often."""
    dims = (shape,) if isinstance(shape, int) else shape
    count = int(np.prod(dims))
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes < _HUGE_MIN:
        return np.zeros(dims, dtype)
    size = -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # zero-filled
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):
            buf.madvise(mmap.MADV_HUGEPAGE)
    out: np.ndarray = np.frombuffer(buf, dtype, count=count).reshape(dims)
    return out


def table_bits(n: int) -> int:
    """log2 of the slot count for n addresses: at least 1.5 n slots, at least 8."""
    bits = 3
    while (1 << bits) < n + (n >> 1) + 1:
        bits += 1
    return bits


@njit(cache=True, nogil=True)
def build_table4(lo: np.ndarray, first: np.ndarray, count: np.ndarray, bits: int,
                 tab: np.ndarray) -> None:
    """Fill ``tab`` (2 << bits zeros) with the IPv4 addresses."""
    size = 1 << bits
    mask = size - 1
    shift = np.uint64(64 - bits)
    for i in range(lo.shape[0]):
        s = _slot4(lo[i], shift)
        while tab[2 * s + 1] != 0:
            s = (s + 1) & mask
        tab[2 * s] = lo[i]
        tab[2 * s + 1] = (np.uint64(first[i]) << np.uint64(24)) | np.uint64(count[i])


@njit(cache=True, nogil=True)
def build_table6(hi: np.ndarray, lo: np.ndarray, first: np.ndarray, count: np.ndarray, bits: int,
                 tab: np.ndarray) -> None:
    """Fill ``tab`` (3 << bits zeros) with the IPv6 addresses."""
    size = 1 << bits
    mask = size - 1
    shift = np.uint64(64 - bits)
    for i in range(lo.shape[0]):
        s = _slot6(hi[i], lo[i], shift)
        while tab[3 * s + 2] != 0:
            s = (s + 1) & mask
        tab[3 * s] = hi[i]
        tab[3 * s + 1] = lo[i]
        tab[3 * s + 2] = (np.uint64(first[i]) << np.uint64(24)) | np.uint64(count[i])


_GROUP = 32  # lookups in flight: their cache misses overlap instead of queueing


@njit(cache=True, nogil=True)
def lookup(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, t: np.ndarray,
           tab4: np.ndarray, bits4: int, tab6: np.ndarray, bits6: int,
           seg: np.ndarray, base: int, out: np.ndarray) -> int:
    """Owner of each (address, time), or -1. Returns the number of hits.

    Works in groups of ``_GROUP`` rows and three passes (home slots, runs, segments), so
    the memory loads of a group are independent of each other and the CPU issues them
    together: on tables far larger than the caches this is what sets the rate.
    """
    mask4 = (1 << bits4) - 1
    shift4 = np.uint64(64 - bits4)
    mask6 = (1 << bits6) - 1
    shift6 = np.uint64(64 - bits6)
    open_ = np.int64(OPEN)
    n = fam.shape[0]
    slot = np.empty(_GROUP, np.int64)
    word = np.empty(_GROUP, np.uint64)
    first = np.empty(_GROUP, np.int64)
    last = np.empty(_GROUP, np.int64)
    hits = 0
    for g0 in range(0, n, _GROUP):
        g1 = min(n, g0 + _GROUP)
        # pass 1: home slot of each address, and its run word (independent loads)
        for r in range(g0, g1):
            i = r - g0
            f = fam[r]
            if f == 4:
                s = _slot4(lo[r], shift4)
                slot[i] = s
                word[i] = tab4[2 * s + 1]
            elif f == 6:
                s = _slot6(hi[r], lo[r], shift6)
                slot[i] = s
                word[i] = tab6[3 * s + 2]
            else:
                slot[i] = -1
                word[i] = 0
        # pass 2: probe from the home slot to the address's run; touch its last segment
        for r in range(g0, g1):
            i = r - g0
            v = word[i]
            s = slot[i]
            run = np.uint64(0)
            if fam[r] == 4:
                key = lo[r]
                while v != 0:
                    if tab4[2 * s] == key:
                        run = v
                        break
                    s = (s + 1) & mask4
                    v = tab4[2 * s + 1]
            elif fam[r] == 6:
                kh = hi[r]
                kl = lo[r]
                while v != 0:
                    if tab6[3 * s + 1] == kl and tab6[3 * s] == kh:
                        run = v
                        break
                    s = (s + 1) & mask6
                    v = tab6[3 * s + 2]
            if run == 0:
                first[i] = 0
                last[i] = -1
                word[i] = 0
            else:
                a = np.int64(run >> np.uint64(24))
                b = a + np.int64(run & np.uint64(0xFFFFFF))
                first[i] = a
                last[i] = b
                word[i] = np.uint64(seg[b - 1, 0])  # the load is the point
        # pass 3: last segment with start <= t; owner if t < its end
        for r in range(g0, g1):
            i = r - g0
            out[r] = -1
            a = first[i]
            b = last[i]
            if b <= a:
                continue
            tr = t[r] - base
            if tr < 0:
                continue
            if tr >= open_:
                tr = open_ - 1
            if b - a <= 8:
                k = b - 1
                while k >= a and seg[k, 0] > tr:
                    k -= 1
            else:
                lo_i = a
                hi_i = b
                while lo_i < hi_i:
                    mid = (lo_i + hi_i) >> 1
                    if seg[mid, 0] <= tr:
                        lo_i = mid + 1
                    else:
                        hi_i = mid
                k = lo_i - 1
            if k >= a and tr < seg[k, 1]:
                out[r] = seg[k, 2]
                hits += 1
    return hits


@njit(cache=True, nogil=True)
def merge_sorted(a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, a3: np.ndarray, a4: np.ndarray,
                 b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, b3: np.ndarray, b4: np.ndarray
                 ) -> np.ndarray:
    """Order of concat(a, b) for two runs each sorted by the key tuple (k0, k1, .., k4);
    a before b on equal keys. O(len(a) + len(b))."""
    na = a0.shape[0]
    nb = b0.shape[0]
    out = np.empty(na + nb, np.int64)
    i = 0
    j = 0
    k = 0
    while i < na and j < nb:
        take_b = False
        if b0[j] != a0[i]:
            take_b = b0[j] < a0[i]
        elif b1[j] != a1[i]:
            take_b = b1[j] < a1[i]
        elif b2[j] != a2[i]:
            take_b = b2[j] < a2[i]
        elif b3[j] != a3[i]:
            take_b = b3[j] < a3[i]
        else:
            take_b = b4[j] < a4[i]
        if take_b:
            out[k] = na + j
            j += 1
        else:
            out[k] = i
            i += 1
        k += 1
    while i < na:
        out[k] = i
        i += 1
        k += 1
    while j < nb:
        out[k] = na + j
        j += 1
        k += 1
    return out
