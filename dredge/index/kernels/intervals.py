"""Compiled kernels over sorted intervals and events: flatten overlapping intervals into
segments (the latest start wins), merge two sorted runs of the history."""

from __future__ import annotations

import numpy as np
from numba import njit


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

