"""Kernels over sorted intervals and events (compiled in C, ``_native.c``): flatten
overlapping intervals into segments (the latest start wins), merge two sorted runs of the
history. This module checks dtypes, allocates the outputs and slices them."""

from __future__ import annotations

import numpy as np

from dredge.index.kernels import _native


def flatten(group: np.ndarray, start: np.ndarray, end: np.ndarray, owner: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals sorted by (group, start, arrival) -> non-overlapping segments per group.

    Where intervals overlap, the one with the latest start owns the time (ties: the one
    that arrived last). Adjacent segments with the same owner are merged.
    Returns (group, seg_start, seg_end, seg_owner): int64, int64, int64, int32.
    """
    group = np.ascontiguousarray(group, np.int64)
    cap = 2 * group.shape[0] + 1  # each interval opens at most one segment and closes one
    out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
           np.empty(cap, np.int32))
    m = _native.flatten(group, np.ascontiguousarray(start, np.int64),
                        np.ascontiguousarray(end, np.int64), np.ascontiguousarray(owner, np.int32),
                        *out)
    og, os_, oe, oo = (a[:m].copy() for a in out)
    return og, os_, oe, oo


def _key_dtype(a: np.ndarray, b: np.ndarray) -> type:
    return np.uint64 if a.dtype.kind == b.dtype.kind == "u" else np.int64


def merge_sorted(a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, a3: np.ndarray, a4: np.ndarray,
                 b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, b3: np.ndarray, b4: np.ndarray
                 ) -> np.ndarray:
    """Order of concat(a, b) for two runs each sorted by the key tuple (k0, k1, .., k4);
    a before b on equal keys. O(len(a) + len(b)). Integer keys: unsigned where both runs'
    are, else compared as int64."""
    keys_a, keys_b = (a0, a1, a2, a3, a4), (b0, b1, b2, b3, b4)
    dtypes = [_key_dtype(x, y) for x, y in zip(keys_a, keys_b, strict=True)]
    unsigned = sum(1 << k for k, d in enumerate(dtypes) if d is np.uint64)
    out = np.empty(len(a0) + len(b0), np.int64)
    _native.merge_sorted(
        tuple(np.ascontiguousarray(x, d) for x, d in zip(keys_a, dtypes, strict=True)),
        tuple(np.ascontiguousarray(x, d) for x, d in zip(keys_b, dtypes, strict=True)), out, unsigned)
    return out
