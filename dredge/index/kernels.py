"""Compiled kernels of the index: flatten overlapping intervals, hash addresses, build the
tables, look up.

The owner of an address at time t is found with one hash probe and, unless t is at or
after the address's latest change, a short search among its older segments: no per-flow
Python.

Layout (chosen for memory and cache misses; see docs/index.md):

- one open-addressing table of uint32 words per family, linear probing from the home slot
  (top ``bits`` of the address's hash; ``1 << bits`` >= 1.5x the addresses). Slots are in
  hash order and never wrap around: the table runs past ``1 << bits`` where a cluster
  does, and one free slot ends it. An IPv4 slot is ``[address, tail start, tail owner + 2,
  first segment]`` (16 bytes), an IPv6 slot ``[hi >> 32, hi, lo >> 32, lo, tail start,
  tail owner + 2, first segment, 0]`` (32 bytes); owner word 0 = empty slot, 1 = nobody;
- the *tail* is what holds from the address's latest change on: its last segment if still
  owned, else nobody from its last end on. A lookup at or after it (live flows) costs the
  slot's cache miss only;
- the segments before the tail, as rows of three int32 ``[start, end, owner]`` (times
  relative to the table's ``base``, the earliest start; ``end == OPEN`` for "still
  owned"), in slot order: a slot's run ends where the next slot's begins.
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
def _hash4(lo: np.uint64) -> np.uint64:
    return lo * _K1


@njit(cache=True, nogil=True, inline="always")
def _hash6(hi: np.uint64, lo: np.uint64) -> np.uint64:
    h = (lo * _K1) ^ (hi * _K2)
    h ^= h >> np.uint64(31)
    return h * _K1


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
def addr_hash(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each address; its top ``bits`` are the home slot in a table of
    ``1 << bits`` slots, so an order by hash is an order by home slot at any table size."""
    out = np.empty(fam.shape[0], np.uint64)
    for i in range(fam.shape[0]):
        out[i] = _hash6(hi[i], lo[i]) if fam[i] == 6 else _hash4(lo[i])
    return out


@njit(cache=True, nogil=True)
def sort_runs(order: np.ndarray, h: np.ndarray, fam: np.ndarray, hi: np.ndarray, lo: np.ndarray,
              start: np.ndarray) -> bool:
    """Rows in ``order`` are sorted by hash ``h`` (stable); sort each run of equal hashes by
    start in place, ties keeping their order. False if a run holds two addresses."""
    n = order.shape[0]
    i = 0
    while i < n:
        r0 = order[i]
        j = i + 1
        while j < n and h[order[j]] == h[r0]:
            r = order[j]
            if fam[r] != fam[r0] or hi[r] != hi[r0] or lo[r] != lo[r0]:
                return False
            j += 1
        if j - i > 32:
            run = order[i:j].copy()
            order[i:j] = run[np.argsort(start[run], kind="mergesort")]
        else:
            for k in range(i + 1, j):
                r = order[k]
                m = k
                while m > i and start[order[m - 1]] > start[r]:
                    order[m] = order[m - 1]
                    m -= 1
                order[m] = r
        i = j
    return True


@njit(cache=True, nogil=True)
def probe_slots(home: np.ndarray) -> np.ndarray:
    """Slot of each address, taken in ascending order of home slot: the first free one
    from its home on. Clusters never wrap around (the table grows past ``1 << bits``
    instead), so slots ascend too and the table is filled front to back."""
    slot = np.empty(home.shape[0], np.int64)
    nxt = 0
    for i in range(home.shape[0]):
        s = max(home[i], nxt)
        slot[i] = s
        nxt = s + 1
    return slot


@njit(cache=True, nogil=True, inline="always")
def _relative(x: int, base: int, top: int) -> int:
    """x - base clipped to [0, top], without overflowing for x near the int64 limits."""
    if x <= base:
        return 0
    if x >= base + top:
        return top
    return x - base


@njit(cache=True, nogil=True)
def fill_table(tab: np.ndarray, width: int, keys: int, slot: np.ndarray,
               hi: np.ndarray, lo: np.ndarray, first: np.ndarray, count: np.ndarray,
               start: np.ndarray, end: np.ndarray, owner: np.ndarray, base: int,
               seg: np.ndarray, pos: int) -> int:
    """Write the addresses (in slot order) into ``tab``; returns the next free row of ``seg``.

    Address i is ``(hi[i], lo[i])`` (``keys`` = 1: the IPv4 word of lo, 4: all of both);
    its segments are ``start/end/owner[first[i]:first[i] + count[i]]`` (epoch seconds,
    sorted; stored relative to ``base``). Its tail goes in its slot: the last segment if
    still owned, else "nobody from the last end on". The segments before the tail go to
    ``seg`` from row ``pos`` on, so a slot's segments end where the next slot's begin; the
    last slot of ``tab`` stays free and holds the total.
    """
    open_ = int(OPEN)
    m32 = np.uint64(0xFFFFFFFF)
    w = keys  # tail start, tail owner + 2, first segment follow the key words
    size = tab.shape[0] // width
    s_free = 0  # slots before it have their first segment written
    for i in range(slot.shape[0]):
        s = slot[i]
        while s_free < s:
            tab[width * s_free + w + 2] = np.uint32(pos)
            s_free += 1
        o = width * s
        if keys == 1:
            tab[o] = np.uint32(lo[i] & m32)
        else:
            tab[o] = np.uint32(hi[i] >> np.uint64(32))
            tab[o + 1] = np.uint32(hi[i] & m32)
            tab[o + 2] = np.uint32(lo[i] >> np.uint64(32))
            tab[o + 3] = np.uint32(lo[i] & m32)
        a = first[i]
        b = a + count[i]
        e = _relative(end[b - 1], base, open_)
        if e == open_:
            b -= 1
            tab[o + w] = np.uint32(_relative(start[b], base, open_ - 1))
            tab[o + w + 1] = np.uint32(owner[b] + 2)
        else:
            tab[o + w] = np.uint32(e)
            tab[o + w + 1] = np.uint32(1)  # nobody
        tab[o + w + 2] = np.uint32(pos)
        for k in range(a, b):
            seg[pos, 0] = _relative(start[k], base, open_ - 1)
            seg[pos, 1] = _relative(end[k], base, open_)
            seg[pos, 2] = owner[k]
            pos += 1
        s_free = s + 1
    while s_free < size:
        tab[width * s_free + w + 2] = np.uint32(pos)
        s_free += 1
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


@njit(cache=True, nogil=True, inline="always")
def _find4(tab4: np.ndarray, shift4: np.uint64, lo: np.uint64) -> int:
    """Slot of an IPv4 address, or -1."""
    s = np.int64(_hash4(lo) >> shift4)
    key = np.uint32(lo)
    taken = tab4[W4 * s + 2]
    while taken != 0 and tab4[W4 * s] != key:
        s += 1
        taken = tab4[W4 * s + 2]
    return int(s) if taken != 0 else -1


@njit(cache=True, nogil=True, inline="always")
def _find6(tab6: np.ndarray, shift6: np.uint64, hi: np.uint64, lo: np.uint64) -> int:
    """Slot of an IPv6 address, or -1."""
    m32 = np.uint64(0xFFFFFFFF)
    s = np.int64(_hash6(hi, lo) >> shift6)
    k0 = np.uint32(hi >> np.uint64(32))
    k1 = np.uint32(hi & m32)
    k2 = np.uint32(lo >> np.uint64(32))
    k3 = np.uint32(lo & m32)
    taken = tab6[W6 * s + 5]
    while taken != 0 and not (tab6[W6 * s + 3] == k3 and tab6[W6 * s + 2] == k2
                              and tab6[W6 * s + 1] == k1 and tab6[W6 * s] == k0):
        s += 1
        taken = tab6[W6 * s + 5]
    return int(s) if taken != 0 else -1


@njit(cache=True, nogil=True, inline="always")
def _at(tab: np.ndarray, width: int, keys: int, s: int, tr: int) -> tuple[int, int, int]:
    """(owner, a, b) of slot s at relative time tr: the tail's owner (-1: nobody) and an
    empty run if tr is at or after the tail's start, else -1 and the run [a, b) to search."""
    w = width * s + keys
    if tr >= int(np.int64(tab[w])):
        return int(np.int64(tab[w + 1])) - 2, 0, 0
    return -1, int(np.int64(tab[w + 2])), int(np.int64(tab[w + width + 2]))


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
    shift4 = np.uint64(64 - bits4)
    shift6 = np.uint64(64 - bits6)
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
                w = W4 * np.int64(_hash4(lo[q]) >> shift4)
                _prefetch(tab4, w)
                _prefetch(tab4, w + W4 + 3)  # the next slot's first segment: where ours end
            elif fam[q] == 6:
                w = W6 * np.int64(_hash6(hi[q], lo[q]) >> shift6)
                _prefetch(tab6, w)
                _prefetch(tab6, w + W6 + 6)
        out[r] = -1
        f = fam[r]
        tr = t[r] - base
        if tr < 0 or (f != 4 and f != 6):
            continue
        if tr >= open_:
            tr = open_ - 1
        if f == 4:
            s = _find4(tab4, shift4, lo[r])
            if s < 0:
                continue
            o, a, b = _at(tab4, W4, 1, s, tr)
        else:
            s = _find6(tab6, shift6, hi[r], lo[r])
            if s < 0:
                continue
            o, a, b = _at(tab6, W6, 4, s, tr)
        if o >= 0:
            out[r] = o
            hits += 1
        elif b > a:
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
def lookup_networks(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, net_fam: int,
                    hi_mask: np.uint64, lo_mask: np.uint64, tab4: np.ndarray, bits4: int,
                    tab6: np.ndarray, bits6: int, seg: np.ndarray, base: int,
                    out: np.ndarray) -> int:
    """For the rows of family ``net_fam`` still without an owner (``out < 0``): the owner
    of the address masked to a prefix, at time 0 (networks are timeless). Returns the
    number of rows it answered; one call per prefix length, no temporary arrays."""
    tr = -base
    if tr < 0:
        return 0
    if tr >= OPEN:
        tr = int(OPEN) - 1
    shift4 = np.uint64(64 - bits4)
    shift6 = np.uint64(64 - bits6)
    found = 0
    for r in range(fam.shape[0]):
        if out[r] >= 0 or fam[r] != net_fam:
            continue
        if net_fam == 4:
            s = _find4(tab4, shift4, lo[r] & lo_mask)
            if s < 0:
                continue
            o, a, b = _at(tab4, W4, 1, s, tr)
        else:
            s = _find6(tab6, shift6, hi[r] & hi_mask, lo[r] & lo_mask)
            if s < 0:
                continue
            o, a, b = _at(tab6, W6, 4, s, tr)
        if b > a:
            o = _search(seg, a, b, tr)
        if o >= 0:
            out[r] = o
            found += 1
    return found


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
