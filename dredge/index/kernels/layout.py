"""Compiled kernels of the index's hash tables: hash addresses, order and place them, fill
the tables (the lookups that read them: :mod:`.lookup`).

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

import numpy as np
from numba import njit

OPEN = np.int32(np.iinfo(np.int32).max)
_HUGE_PAGE = 2 << 20
_HUGE_MIN = 8 << 20
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)


@njit(cache=True, nogil=True, inline="always")
def hash4(lo: np.uint64) -> np.uint64:
    return lo * _K1


@njit(cache=True, nogil=True, inline="always")
def hash6(hi: np.uint64, lo: np.uint64) -> np.uint64:
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


@njit(cache=True, nogil=True)
def addr_hash(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each address; its top ``bits`` are the home slot in a table of
    ``1 << bits`` slots, so an order by hash is an order by home slot at any table size."""
    out = np.empty(fam.shape[0], np.uint64)
    for i in range(fam.shape[0]):
        out[i] = hash6(hi[i], lo[i]) if fam[i] == 6 else hash4(lo[i])
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
