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
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

OPEN = np.int32(np.iinfo(np.int32).max)
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


W4 = 4  # uint32 words per IPv4 slot: address, tail start, tail owner + 2, first segment
W6 = 8  # per IPv6 slot: hi >> 32, hi, lo >> 32, lo, tail start, tail owner + 2, first segment, 0
MAX_SEGMENTS = (1 << 32) - 1  # segment numbers are uint32 words of a slot


def _prefetch_typing(typingctx: Any, arr: Any, idx: Any) -> Any:
    """Hint the CPU to start loading element ``idx`` of the C-contiguous ``arr`` (flat).

    Unlike a load it retires at once, so dozens of cache misses can be in flight while
    earlier rows are being answered; an address past the end is harmless (no fault).
    """
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ind = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [ind])
        i32 = ir.IntType(32)
        ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return sig, codegen


_prefetch: Any = intrinsic(_prefetch_typing)


@njit(cache=True, nogil=True)
def place4(lo: np.ndarray, bits: int, tab: np.ndarray, where: np.ndarray) -> None:
    """Put the IPv4 addresses in ``tab`` ((1 << bits) + 1 slots of zeros); ``where[i]`` = slot."""
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    for i in range(lo.shape[0]):
        s = _slot4(lo[i], shift)
        while tab[W4 * s + 2] != 0:
            s = (s + 1) & mask
        tab[W4 * s] = np.uint32(lo[i])
        tab[W4 * s + 2] = 1  # taken; the tail is written by fill_slots
        where[i] = s


@njit(cache=True, nogil=True)
def place6(hi: np.ndarray, lo: np.ndarray, bits: int, tab: np.ndarray, where: np.ndarray) -> None:
    """Put the IPv6 addresses in ``tab`` ((1 << bits) + 1 slots of zeros); ``where[i]`` = slot."""
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    m32 = np.uint64(0xFFFFFFFF)
    for i in range(lo.shape[0]):
        s = _slot6(hi[i], lo[i], shift)
        while tab[W6 * s + 5] != 0:
            s = (s + 1) & mask
        tab[W6 * s] = np.uint32(hi[i] >> np.uint64(32))
        tab[W6 * s + 1] = np.uint32(hi[i] & m32)
        tab[W6 * s + 2] = np.uint32(lo[i] >> np.uint64(32))
        tab[W6 * s + 3] = np.uint32(lo[i] & m32)
        tab[W6 * s + 5] = 1
        where[i] = s


@njit(cache=True, nogil=True)
def fill_slots(tab: np.ndarray, width: int, keys: int, bits: int, where: np.ndarray,
               first: np.ndarray, count: np.ndarray, start: np.ndarray, end: np.ndarray, owner: np.ndarray,
               seg: np.ndarray, pos: int) -> int:
    """Tails and segment numbers of the placed addresses, in slot order.

    Address i's segments are ``start/end/owner[first[i]:first[i] + count[i]]`` (relative
    times, sorted). Its tail goes in its slot: the last segment if still owned, else
    "nobody from the last end on"; the segments before the tail are copied to ``seg`` from
    row ``pos`` on, so a slot's segments end where the next slot's begin (one more slot at
    the end holds the total). Returns the next free row.
    """
    size = 1 << bits
    who = np.full(size, -1, np.int64)
    for i in range(where.shape[0]):
        who[where[i]] = i
    w = keys  # tail start, tail owner + 2, first segment follow the key words
    for s in range(size):
        tab[width * s + w + 2] = np.uint32(pos)
        i = who[s]
        if i < 0:
            continue
        a = first[i]
        b = a + count[i]
        if end[b - 1] >= OPEN:
            b -= 1
            tab[width * s + w] = np.uint32(start[b])
            tab[width * s + w + 1] = np.uint32(owner[b] + 2)
        else:
            tab[width * s + w] = np.uint32(end[b - 1])
            tab[width * s + w + 1] = np.uint32(1)  # nobody
        for k in range(a, b):
            seg[pos, 0] = start[k]
            seg[pos, 1] = end[k]
            seg[pos, 2] = owner[k]
            pos += 1
    tab[width * size + w + 2] = np.uint32(pos)
    return pos


@njit(cache=True, nogil=True, inline="always")
def _search(seg: np.ndarray, a: int, b: int, tr: int) -> int:
    """Owner among segments [a, b) at relative time tr, or -1."""
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
        return int(seg[k, 2])
    return -1


@njit(cache=True, nogil=True, inline="always")
def _answer(seg: np.ndarray, p_row: np.ndarray, p_a: np.ndarray, p_b: np.ndarray,
            p_t: np.ndarray, j: int, out: np.ndarray) -> int:
    o = _search(seg, p_a[j], p_b[j], p_t[j])
    out[p_row[j]] = o
    return 1 if o >= 0 else 0


_AHEAD = 16  # rows between a slot's prefetch and its probe
_PENDING = 16  # rows between a segment run's prefetch and its search (a power of two)


@njit(cache=True, nogil=True)
def lookup(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, t: np.ndarray,
           tab4: np.ndarray, bits4: int, tab6: np.ndarray, bits6: int,
           seg: np.ndarray, base: int, out: np.ndarray) -> int:
    """Owner of each (address, time), or -1. Returns the number of hits.

    A software pipeline: the slot of row r + _AHEAD is prefetched while row r is probed; a
    row whose time is at or after its address's tail is answered from the slot (one cache
    miss); any other row prefetches its segments and waits in a ring of _PENDING rows
    before its search. The loads of many rows are thus in flight at once: on tables far
    larger than the caches this is what sets the rate.
    """
    mask4 = (1 << bits4) - 1
    shift4 = np.uint64(64 - bits4)
    mask6 = (1 << bits6) - 1
    shift6 = np.uint64(64 - bits6)
    m32 = np.uint64(0xFFFFFFFF)
    open_ = np.int64(OPEN)
    n = fam.shape[0]
    p_row = np.empty(_PENDING, np.int64)
    p_a = np.empty(_PENDING, np.int64)
    p_b = np.empty(_PENDING, np.int64)
    p_t = np.empty(_PENDING, np.int64)
    head = 0  # oldest pending row
    tail = 0  # next free place in the ring
    hits = 0
    for r in range(n):
        q = r + _AHEAD
        if q < n:
            if fam[q] == 4:
                w = W4 * _slot4(lo[q], shift4)
                _prefetch(tab4, w)
                _prefetch(tab4, w + W4 + 3)  # the next slot's first segment: where ours end
            elif fam[q] == 6:
                w = W6 * _slot6(hi[q], lo[q], shift6)
                _prefetch(tab6, w)
                _prefetch(tab6, w + W6 + 6)
        out[r] = -1
        f = fam[r]
        tr = t[r] - base
        a = np.int64(0)
        b = np.int64(0)
        if tr >= 0 and (f == 4 or f == 6):
            if tr >= open_:
                tr = open_ - 1
            if f == 4:
                s = _slot4(lo[r], shift4)
                key = np.uint32(lo[r])
                taken = tab4[W4 * s + 2]
                while taken != 0 and tab4[W4 * s] != key:
                    s = (s + 1) & mask4
                    taken = tab4[W4 * s + 2]
                if taken != 0:
                    if tr >= np.int64(tab4[W4 * s + 1]):
                        out[r] = np.int32(taken) - 2
                        hits += taken >= 2
                    else:
                        a = np.int64(tab4[W4 * s + 3])
                        b = np.int64(tab4[W4 * s + W4 + 3])
            else:
                s = _slot6(hi[r], lo[r], shift6)
                k0 = np.uint32(hi[r] >> np.uint64(32))
                k1 = np.uint32(hi[r] & m32)
                k2 = np.uint32(lo[r] >> np.uint64(32))
                k3 = np.uint32(lo[r] & m32)
                taken = tab6[W6 * s + 5]
                while taken != 0 and not (tab6[W6 * s + 3] == k3 and tab6[W6 * s + 2] == k2
                                          and tab6[W6 * s + 1] == k1 and tab6[W6 * s] == k0):
                    s = (s + 1) & mask6
                    taken = tab6[W6 * s + 5]
                if taken != 0:
                    if tr >= np.int64(tab6[W6 * s + 4]):
                        out[r] = np.int32(taken) - 2
                        hits += taken >= 2
                    else:
                        a = np.int64(tab6[W6 * s + 6])
                        b = np.int64(tab6[W6 * s + W6 + 6])
        if b > a:
            _prefetch(seg, 3 * a)
            _prefetch(seg, 3 * b - 1)
            j = tail & (_PENDING - 1)
            p_row[j] = r
            p_a[j] = a
            p_b[j] = b
            p_t[j] = tr
            tail += 1
        if tail - head == _PENDING:
            hits += _answer(seg, p_row, p_a, p_b, p_t, head & (_PENDING - 1), out)
            head += 1
    while head < tail:
        hits += _answer(seg, p_row, p_a, p_b, p_t, head & (_PENDING - 1), out)
        head += 1
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
