"""Lookups in the index's hash tables (compiled in C, ``_native.c``; layout: :mod:`.layout`).

The owner of an address at time t is found with one hash probe and, unless t is at or
after the address's latest change, a short search among its older segments: no per-flow
Python. The C loop is a software pipeline: the slot of row r + 16 is prefetched
(``__builtin_prefetch``) while row r is probed, and a row that must search its segments
prefetches them and waits in a ring of 16 rows, so the loads of many rows are in flight at
once: on tables far larger than the caches this is what sets the rate. It runs without
the GIL, and raises ValueError on a table that is not one :func:`.layout.fill_table` wrote
(no free last slot, segments past the segment table) instead of reading out of bounds.
"""

from __future__ import annotations

import numpy as np

from dredge.index.kernels import _native
from dredge.index.kernels.layout import families, inplace


def lookup(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, t: np.ndarray,
           tab4: np.ndarray, bits4: int, tab6: np.ndarray, bits6: int,
           seg: np.ndarray, base: int, out: np.ndarray) -> int:
    """Owner of each (address, time) into ``out`` (int32), or -1. Returns the number of hits.

    A row whose time is before ``base`` or whose family is neither 4 nor 6 gets -1; a time
    more than ~68 years after ``base`` counts as the last representable second.
    """
    return int(_native.lookup(
        families(fam), np.ascontiguousarray(hi, np.uint64), np.ascontiguousarray(lo, np.uint64),
        np.ascontiguousarray(t, np.int64), np.ascontiguousarray(tab4, np.uint32), int(bits4),
        np.ascontiguousarray(tab6, np.uint32), int(bits6), np.ascontiguousarray(seg, np.int32),
        int(base), inplace(out, np.int32, "out")))


def lookup_networks(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, net_fam: int,
                    hi_mask: np.uint64, lo_mask: np.uint64, tab4: np.ndarray, bits4: int,
                    tab6: np.ndarray, bits6: int, seg: np.ndarray, base: int,
                    out: np.ndarray) -> int:
    """For the rows of family ``net_fam`` still without an owner (``out < 0``): the owner
    of the address masked to a prefix, at time 0 (networks are timeless). Returns the
    number of rows it answered; one call per prefix length, no temporary arrays."""
    return int(_native.lookup_networks(
        families(fam), np.ascontiguousarray(hi, np.uint64), np.ascontiguousarray(lo, np.uint64),
        int(net_fam), int(hi_mask), int(lo_mask), np.ascontiguousarray(tab4, np.uint32),
        int(bits4), np.ascontiguousarray(tab6, np.uint32), int(bits6),
        np.ascontiguousarray(seg, np.int32), int(base), inplace(out, np.int32, "out")))
