"""The C kernels of the index against small pure-Python references (flatten, merge, hash,
run sort, probing; the lookups against a brute-force scan are in test_lookup_table.py), and
their answers to hostile input: wrong lengths, rows out of range and corrupt tables raise
instead of reading or writing out of bounds."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.index import kernels
from dredge.index.tables import AddrTable, addr_table

M64 = (1 << 64) - 1
I64 = st.integers(-(2**63), 2**63 - 1)
U64 = st.integers(0, M64)


def _flatten_ref(group: list[int], start: list[int], end: list[int], owner: list[int]
                 ) -> list[tuple[int, int, int, int]]:
    """Per group: the owner of each piece between consecutive boundaries is the covering
    interval with the latest (start, arrival); adjacent pieces of one owner merge."""
    out: list[tuple[int, int, int, int]] = []
    for g in dict.fromkeys(group):
        rows = [i for i in range(len(group)) if group[i] == g]
        cuts = sorted({start[i] for i in rows} | {end[i] for i in rows})
        for x, y in itertools.pairwise(cuts):
            cover = [i for i in rows if start[i] <= x < end[i]]
            if not cover:
                continue
            w = owner[max(cover, key=lambda i: (start[i], i))]
            if out and out[-1][0] == g and out[-1][2] == x and out[-1][3] == w:
                out[-1] = (g, out[-1][1], y, w)
            else:
                out.append((g, x, y, w))
    return out


@st.composite
def _intervals(draw: st.DrawFn) -> tuple[list[int], ...]:
    n = draw(st.integers(0, 30))
    rows = sorted(draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40)), min_size=n,
                                max_size=n)))
    lens = draw(st.lists(st.integers(1, 25), min_size=n, max_size=n))
    owners = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    return ([g for g, _ in rows], [s for _, s in rows],
            [s + ln for (_, s), ln in zip(rows, lens, strict=True)], owners)


@settings(max_examples=200, deadline=None)
@given(_intervals())
def test_flatten_equals_reference(iv: tuple[list[int], ...]) -> None:
    group, start, end, owner = iv
    g, s, e, o = kernels.flatten(np.array(group, np.int64), np.array(start, np.int64),
                                 np.array(end, np.int64), np.array(owner, np.int32))
    assert [a.dtype.name for a in (g, s, e, o)] == ["int64", "int64", "int64", "int32"]
    got = list(zip(g.tolist(), s.tolist(), e.tolist(), o.tolist(), strict=True))
    assert got == _flatten_ref(group, start, end, owner)


@st.composite
def _runs(draw: st.DrawFn) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    key = st.tuples(st.integers(-2, 2), st.one_of(st.integers(0, 1), U64), st.integers(0, 1),
                    st.one_of(st.integers(-2, 2), I64), st.integers(0, 3))
    return sorted(draw(st.lists(key, max_size=25))), sorted(draw(st.lists(key, max_size=25)))


def _columns(rows: list[tuple[int, ...]]) -> list[np.ndarray]:
    dtypes = (np.int32, np.uint64, np.uint64, np.int64, np.int64)  # as history._sort_keys
    return [np.array([r[k] for r in rows], d) for k, d in enumerate(dtypes)]


@settings(max_examples=200, deadline=None)
@given(_runs())
def test_merge_sorted_equals_a_stable_sort(runs: tuple[list[tuple[int, ...]], ...]) -> None:
    a, b = runs
    order = kernels.merge_sorted(*_columns(a), *_columns(b))
    both = a + b
    assert order.tolist() == sorted(range(len(both)), key=lambda i: both[i])


def _hash_ref(fam: int, hi: int, lo: int) -> int:
    k1, k2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
    if fam != 6:
        return lo * k1 & M64
    h = (lo * k1 & M64) ^ (hi * k2 & M64)
    h ^= h >> 31
    return h * k1 & M64


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-128, 127), U64, U64), max_size=40))
def test_addr_hash_equals_reference(rows: list[tuple[int, int, int]]) -> None:
    fam = np.array([r[0] for r in rows], np.int8)
    hi = np.array([r[1] for r in rows], np.uint64)
    lo = np.array([r[2] for r in rows], np.uint64)
    assert kernels.addr_hash(fam, hi, lo).tolist() == [_hash_ref(*r) for r in rows]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(-5, 5)), max_size=120),
       st.booleans())
def test_sort_runs_equals_reference(rows: list[tuple[int, int, int]], collide: bool) -> None:
    """Runs of equal hashes sorted by start (ties keep their order); runs longer than 32 take
    the merge sort. With colliding hashes: False exactly when a run holds two addresses."""
    pick = np.array([r[0] for r in rows], np.int64)
    fam = np.where(pick == 3, 6, 4).astype(np.int8)
    hi, lo = np.zeros(pick.size, np.uint64), pick.astype(np.uint64)
    h = kernels.addr_hash(fam, hi, lo)
    if collide:
        h = np.array([r[1] for r in rows], np.uint64)
    start = np.array([r[2] for r in rows], np.int64)
    order = np.argsort(h, kind="stable")
    same = kernels.sort_runs(order, h, fam, hi, lo, start)
    runs: dict[int, set[tuple[int, int, int]]] = {}
    for r in range(pick.size):
        runs.setdefault(int(h[r]), set()).add((int(fam[r]), int(hi[r]), int(lo[r])))
    assert same == all(len(v) == 1 for v in runs.values())
    if same:
        assert order.tolist() == sorted(range(pick.size), key=lambda r: (int(h[r]), int(start[r])))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 60), I64), max_size=40))
def test_probe_slots_equals_reference(home: list[int]) -> None:
    want, nxt = [], 0
    for x in home:
        s = max(x, nxt)
        want.append(s)
        nxt = (s + 1 + 2**63) % 2**64 - 2**63  # int64, wrapping
    assert kernels.probe_slots(np.array(home, np.int64)).tolist() == want


def _table() -> AddrTable:
    fam = np.array([4, 4, 4, 6], np.int8)
    hi = np.array([0, 0, 0, 1], np.uint64)
    lo = np.array([5, 5, 9, 2], np.uint64)
    start = np.array([10, 20, 10, 10], np.int64)
    end = np.array([15, 30, np.iinfo(np.int64).max, 12], np.int64)
    return addr_table(fam, hi, lo, start, end, np.array([2, 3, 4, 5], np.int32))


def _args(table: AddrTable, **change: Any) -> dict[str, Any]:
    q = np.array([4, 4, 6], np.int8)
    args: dict[str, Any] = {
        "fam": q, "hi": np.array([0, 0, 1], np.uint64), "lo": np.array([5, 9, 2], np.uint64),
        "t": np.array([11, 11, 11], np.int64), "tab4": table.tab4, "bits4": table.bits4,
        "tab6": table.tab6, "bits6": table.bits6, "seg": table.seg,
        "base": table.base, "out": np.empty(3, np.int32)}
    args.update(change)
    return args


def test_lookup_answers_then_refuses_corrupt_tables() -> None:
    table = _table()
    args = _args(table)
    assert kernels.lookup(**args) == 3
    assert args["out"].tolist() == [2, 4, 5]
    no_free_slot = table.tab4.copy()
    no_free_slot[-2] = 7  # the last slot's owner word: taken
    bad_seg = table.seg[:0]
    for change in ({"tab4": no_free_slot}, {"tab4": table.tab4[:-4]},
                   {"bits4": 0}, {"bits4": 64}, {"bits6": 30}, {"seg": bad_seg},
                   {"hi": np.zeros(2, np.uint64)}, {"out": np.empty(2, np.int32)}):
        with pytest.raises(ValueError):
            kernels.lookup(**_args(table, **change))
    with pytest.raises(TypeError):
        kernels.lookup(**_args(table, out=np.empty(3, np.int64)))
    with pytest.raises(ValueError):
        kernels.lookup_networks(args["fam"], args["hi"], args["lo"], 4, np.uint64(M64),
                                np.uint64(M64), no_free_slot, table.bits4, table.tab6,
                                table.bits6, table.seg, 0, np.full(3, -1, np.int32))


def test_hostile_rows_raise_instead_of_reading_out_of_bounds() -> None:
    h = np.zeros(3, np.uint64)
    fam, hi, lo, start = np.full(3, 4, np.int8), h, h, np.zeros(3, np.int64)
    with pytest.raises(IndexError):
        kernels.sort_runs(np.array([0, 1, 3]), h, fam, hi, lo, start)
    with pytest.raises(IndexError):
        kernels.sort_runs(np.array([0, -1, 2]), h, fam, hi, lo, start)
    with pytest.raises(ValueError):
        kernels.flatten(np.zeros(3, np.int64), start, start[:2], np.zeros(3, np.int32))
    with pytest.raises(ValueError):
        kernels.addr_hash(fam, hi[:1], lo)
    tab, seg = np.zeros(4 * 9, np.uint32), np.zeros((3, 3), np.int32)
    one = np.ones(1, np.int64)
    fill: tuple[Any, ...] = (tab, 4, 1, np.zeros(1, np.int64), h[:1], h[:1], np.zeros(1, np.int64), one * 3,
            start, start + 5, np.zeros(3, np.int32), 0, seg, 0)
    assert kernels.fill_table(*fill) == 3
    for k, bad in ((3, one * 9), (6, one * -1), (7, one * 4), (7, one * 0), (13, 1)):
        with pytest.raises(IndexError):
            kernels.fill_table(*fill[:k], bad, *fill[k + 1:])


def test_lookups_from_threads_agree() -> None:
    """The lookups run without the GIL and keep no state between calls: threads sharing a
    table get what one thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    n = 5000
    lo = rng.integers(0, 300, n).astype(np.uint64)
    start = rng.integers(0, 1000, n)
    table = addr_table(np.full(n, 4, np.int8), np.zeros(n, np.uint64), lo, start,
                       start + rng.integers(1, 100, n), rng.integers(0, 50, n).astype(np.int32))
    q = rng.integers(0, 320, 200_000).astype(np.uint64)
    t = rng.integers(-10, 1100, q.size)
    fam, hi = np.full(q.size, 4, np.int8), np.zeros(q.size, np.uint64)

    def run(_: int) -> list[int]:
        out = np.empty(q.size, np.int32)
        kernels.lookup(fam, hi, q, t, table.tab4, table.bits4, table.tab6, table.bits6,
                       table.seg, table.base, out)
        return out.tolist()

    want = run(0)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == want for r in results)
