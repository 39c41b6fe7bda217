"""Compiled kernels of the index: flatten overlapping intervals, hash addresses, look up.

The owner of an address at time t is found with one hash probe (address -> its run of
segments) and a short search among that address's segments: no per-flow Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = np.int64(-1)


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
def _hash(fam: int, hi: np.uint64, lo: np.uint64, mask: int) -> np.int64:
    h = (lo * np.uint64(0x9E3779B97F4A7C15)) ^ (hi * np.uint64(0xC2B2AE3D27D4EB4F)) ^ np.uint64(fam)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@njit(cache=True, nogil=True)
def build_table(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, first: np.ndarray, count: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open-addressing table from unique addresses to their run of segments."""
    n = fam.shape[0]
    size = 16
    while size < 2 * n + 1:
        size *= 2
    mask = size - 1
    tf = np.zeros(size, np.int8)  # 0 = empty slot
    th = np.zeros(size, np.uint64)
    tl = np.zeros(size, np.uint64)
    tfirst = np.zeros(size, np.int64)
    tcount = np.zeros(size, np.int32)
    for i in range(n):
        s = _hash(fam[i], hi[i], lo[i], mask)
        while tf[s] != 0:
            s = (s + 1) & mask
        tf[s] = fam[i]
        th[s] = hi[i]
        tl[s] = lo[i]
        tfirst[s] = first[i]
        tcount[s] = count[i]
    return tf, th, tl, tfirst, tcount


@njit(cache=True, nogil=True)
def lookup(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, t: np.ndarray,
           tf: np.ndarray, th: np.ndarray, tl: np.ndarray, tfirst: np.ndarray, tcount: np.ndarray,
           seg_start: np.ndarray, seg_end: np.ndarray, seg_owner: np.ndarray, out: np.ndarray) -> int:
    """Owner of each (address, time), or -1. Returns the number of hits."""
    mask = tf.shape[0] - 1
    hits = 0
    for r in range(fam.shape[0]):
        out[r] = -1
        f = fam[r]
        if f <= 0:
            continue
        s = _hash(f, hi[r], lo[r], mask)
        while tf[s] != 0:
            if tf[s] == f and tl[s] == lo[r] and th[s] == hi[r]:
                a = tfirst[s]
                b = a + tcount[s]
                tr = t[r]
                # last segment with start <= tr
                if b - a <= 8:
                    k = b - 1
                    while k >= a and seg_start[k] > tr:
                        k -= 1
                else:
                    lo_i = a
                    hi_i = b
                    while lo_i < hi_i:
                        mid = (lo_i + hi_i) >> 1
                        if seg_start[mid] <= tr:
                            lo_i = mid + 1
                        else:
                            hi_i = mid
                    k = lo_i - 1
                if k >= a and tr < seg_end[k]:
                    out[r] = seg_owner[k]
                    hits += 1
                break
            s = (s + 1) & mask
    return hits
