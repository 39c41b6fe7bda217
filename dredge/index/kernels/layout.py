"""Kernels of the index's hash tables (compiled in C, ``_native.c``; this module checks
dtypes and allocates outputs): hash addresses, order and place them, fill the tables (the
lookups that read them: :mod:`.lookup`).

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

from dredge.index.kernels import _native

OPEN = np.int32(np.iinfo(np.int32).max)
_HUGE_PAGE = 2 << 20
_HUGE_MIN = 8 << 20
# the hash (in C): IPv4 ``lo * K1``; IPv6 ``h = lo * K1 ^ hi * K2; h ^= h >> 31; h * K1``
# (uint64, wrapping), with K1 = 0x9E3779B97F4A7C15 and K2 = 0xC2B2AE3D27D4EB4F


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


def families(fam: np.ndarray) -> np.ndarray:
    """Address families as the kernels take them: contiguous int8, 4 or 6, any other value 0
    (so that no wider value wraps around to 4 or 6)."""
    if fam.dtype == np.int8:
        return np.ascontiguousarray(fam)
    return np.where((fam == 4) | (fam == 6), fam, 0).astype(np.int8)


def inplace(a: np.ndarray, dtype: type, what: str) -> np.ndarray:
    """``a`` itself, if a kernel can write into it (C-contiguous, writable, of ``dtype``)."""
    if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"{what} must be a writable C-contiguous {np.dtype(dtype).name} array")
    return a


def _u64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.uint64)


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.int64)


def addr_hash(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each address; its top ``bits`` are the home slot in a table of
    ``1 << bits`` slots, so an order by hash is an order by home slot at any table size."""
    out = np.empty(fam.shape[0], np.uint64)
    _native.addr_hash(families(fam), _u64(hi), _u64(lo), out)
    return out


def sort_runs(order: np.ndarray, h: np.ndarray, fam: np.ndarray, hi: np.ndarray, lo: np.ndarray,
              start: np.ndarray) -> bool:
    """Rows in ``order`` (int64) are sorted by hash ``h`` (stable); sort each run of equal
    hashes by start in place, ties keeping their order. False if a run holds two addresses
    (the runs before it are sorted then, the rest not). IndexError if a row is out of range."""
    return bool(_native.sort_runs(inplace(order, np.int64, "order"), _u64(h), families(fam),
                                  _u64(hi), _u64(lo), _i64(start)))


def probe_slots(home: np.ndarray) -> np.ndarray:
    """Slot of each address, taken in ascending order of home slot: the first free one
    from its home on. Clusters never wrap around (the table grows past ``1 << bits``
    instead), so slots ascend too and the table is filled front to back."""
    slot = np.empty(home.shape[0], np.int64)
    _native.probe_slots(_i64(home), slot)
    return slot


def fill_table(tab: np.ndarray, width: int, keys: int, slot: np.ndarray,
               hi: np.ndarray, lo: np.ndarray, first: np.ndarray, count: np.ndarray,
               start: np.ndarray, end: np.ndarray, owner: np.ndarray, base: int,
               seg: np.ndarray, pos: int) -> int:
    """Write the addresses (in slot order) into ``tab``; returns the next free row of ``seg``.

    Address i is ``(hi[i], lo[i])`` (``keys`` = 1: the IPv4 word of lo, 4: all of both);
    its segments are ``start/end/owner[first[i]:first[i] + count[i]]`` (epoch seconds,
    sorted; stored relative to ``base``). Its tail goes in its slot: the last segment if
    still owned, else "nobody from the last end on". The segments before the tail go to
    ``seg`` (int32, n x 3) from row ``pos`` on, so a slot's segments end where the next
    slot's begin; the last slot of ``tab`` (uint32) stays free and holds the total.
    IndexError if a slot, row or segment is out of range.
    """
    if seg.ndim != 2 or seg.shape[1] != 3:
        raise ValueError("seg must have 3 columns")
    return int(_native.fill_table(
        inplace(tab, np.uint32, "tab"), int(width), int(keys), _i64(slot), _u64(hi), _u64(lo),
        _i64(first), _i64(count), _i64(start), _i64(end), np.ascontiguousarray(owner, np.int32),
        int(base), inplace(seg, np.int32, "seg"), int(pos)))
