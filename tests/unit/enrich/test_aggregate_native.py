"""The rollup's group-by in C (dredge.flowlog._native.aggregate via rollup._aggregate) against a
pure-Python reference: groups in first-seen order, sums saturating at the int64 maximum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.enrich.rollup import _aggregate

I64_MAX = 2**63 - 1


def ref_add(a: int, b: int) -> int:
    """a + b saturating at the int64 maximum; a negative b (never a count) wraps."""
    if b <= 0 or a <= I64_MAX - b:
        return (a + b + 2**63) % 2**64 - 2**63
    return I64_MAX


def ref_aggregate(rows: list[tuple[int, int, int, int, int]]) -> list[tuple[int, ...]]:
    groups: dict[tuple[int, int], list[int]] = {}  # dicts keep first-seen order
    for k1, k2, *sums in rows:
        acc = groups.setdefault((k1, k2), [0, 0, 0])
        acc[:] = [ref_add(a, s) for a, s in zip(acc, sums, strict=True)]
    return [(*k, *acc) for k, acc in groups.items()]


_u64 = st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))
_count = st.one_of(st.integers(0, 10**6), st.integers(I64_MAX - 10**6, I64_MAX),
                   st.integers(-2**63, 2**63 - 1))
_row = st.tuples(_u64, st.sampled_from([0, 7]) | _u64, _count, _count, _count)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_row, st.sampled_from([(1, 2, I64_MAX, 1, 1), (1, 2, 5, 1, 1)])), max_size=80))
def test_aggregate_matches_reference(rows: list[tuple[int, int, int, int, int]]) -> None:
    cols = [np.array([r[i] for r in rows], dt) for i, dt in
            enumerate((np.uint64, np.uint64, np.int64, np.int64, np.int64))]
    out = _aggregate(*cols)
    assert [o.dtype for o in out] == [np.uint64, np.uint64, np.int64, np.int64, np.int64]
    assert list(zip(*(o.tolist() for o in out), strict=True)) == ref_aggregate(rows)


def test_many_groups_and_collisions() -> None:
    rng = np.random.default_rng(7)
    k1 = rng.integers(0, 50, 20_000).astype(np.uint64) << np.uint64(40)  # same low bits: hash collisions
    k2 = rng.integers(0, 50, 20_000).astype(np.uint64)
    b = rng.integers(0, 1000, 20_000)
    ones = np.ones(20_000, np.int64)
    rows = list(zip(k1.tolist(), k2.tolist(), b.tolist(), b.tolist(), ones.tolist(), strict=True))
    out = _aggregate(k1, k2, b, b, ones)
    assert list(zip(*(o.tolist() for o in out), strict=True)) == ref_aggregate(rows)


def test_lengths_must_agree() -> None:
    z = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="length"):
        _aggregate(np.zeros(3, np.uint64), np.zeros(2, np.uint64), z, z, z)
