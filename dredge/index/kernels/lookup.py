"""Compiled lookups in the index's hash tables (layout: :mod:`.layout`).

The owner of an address at time t is found with one hash probe and, unless t is at or
after the address's latest change, a short search among its older segments: no per-flow
Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from dredge.index.kernels.layout import OPEN, W4, W6, hash4, hash6


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
    s = np.int64(hash4(lo) >> shift4)
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
    s = np.int64(hash6(hi, lo) >> shift6)
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
                w = W4 * np.int64(hash4(lo[q]) >> shift4)
                _prefetch(tab4, w)
                _prefetch(tab4, w + W4 + 3)  # the next slot's first segment: where ours end
            elif fam[q] == 6:
                w = W6 * np.int64(hash6(hi[q], lo[q]) >> shift6)
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
