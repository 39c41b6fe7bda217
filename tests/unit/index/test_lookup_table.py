"""The address table on its own: lookups equal a brute-force scan of the intervals, on
crowded tables (probe clusters, clusters running past the last home slot), long runs of
segments, open and closed tails, both families and null rows, batches longer than the
lookup's pipeline, and inputs in hash order or in address order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog.parser import Addr
from dredge.index import kernels
from dredge.index.tables import AddrTable, addr_table

FOREVER = np.iinfo(np.int64).max
BASE = 1_700_000_000


def _brute(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: np.ndarray,
           end: np.ndarray, owner: np.ndarray, q: Addr, t: np.ndarray) -> np.ndarray:
    """Latest start wins, ties: the later row; -1 where nobody owns the address at t."""
    out = np.full(t.size, -1, np.int32)
    for r in range(t.size):
        best = None
        for k in range(start.size):
            if (fam[k], hi[k], lo[k]) != (q.fam[r], q.hi[r], q.lo[r]) or q.fam[r] == 0:
                continue
            if start[k] <= t[r] < end[k] and (best is None or start[k] >= start[best]):
                best = k
        if best is not None:
            out[r] = owner[best]
    return out


def _crowded_v4(n: int) -> np.ndarray:
    """IPv4 addresses whose home slots are the last ones of a small table."""
    cand = np.arange(10 << 24, (10 << 24) + 4096, dtype=np.uint64)
    h = kernels.addr_hash(np.full(cand.size, 4, np.int8), np.zeros(cand.size, np.uint64), cand)
    return cand[np.argsort(h)[::-1][:n]]


_V4 = np.concatenate([_crowded_v4(12), np.array([0, 0xFFFFFFFF, 0x0A000001], np.uint64)])
_V6 = [(0x20010DB8_00000000, 1), (0x20010DB8_00000000, 2), (0, 0x0A000001), (1 << 63, 0)]
_ADDRS = [(4, 0, int(x)) for x in _V4] + [(6, h, lo) for h, lo in _V6]


@st.composite
def _rows(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, 60))
    picks = draw(st.lists(st.integers(0, len(_ADDRS) - 1), min_size=n, max_size=n))
    starts = draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
    lens = draw(st.lists(st.one_of(st.none(), st.integers(1, 60)), min_size=n, max_size=n))
    fam = np.array([_ADDRS[p][0] for p in picks], np.int8)
    hi = np.array([_ADDRS[p][1] for p in picks], np.uint64)
    lo = np.array([_ADDRS[p][2] for p in picks], np.uint64)
    start = np.array(starts, np.int64) + BASE
    end = np.array([FOREVER if ln is None else s + ln for s, ln in zip(start, lens, strict=True)],
                   np.int64)
    owner = np.arange(2, n + 2, dtype=np.int32)
    return fam, hi, lo, start, end, owner


def _queries(rng: np.random.Generator, m: int) -> tuple[Addr, np.ndarray]:
    idx = rng.integers(0, len(_ADDRS) + 2, m)  # two past the end: a null row, an unknown
    fam = np.array([_ADDRS[i][0] if i < len(_ADDRS) else (0, 4)[i - len(_ADDRS)] for i in idx],
                   np.int8)
    hi = np.array([_ADDRS[i][1] if i < len(_ADDRS) else 0 for i in idx], np.uint64)
    lo = np.array([_ADDRS[i][2] if i < len(_ADDRS) else 0x0B000001 for i in idx], np.uint64)
    t = BASE + rng.integers(-5, 300, m)
    t[rng.random(m) < 0.05] = FOREVER // 2  # far future: clipped, still owned if open
    return Addr(fam, hi, lo), t.astype(np.int64)


@settings(max_examples=120, deadline=None)
@given(_rows(), st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 40, 300]))
def test_lookup_equals_brute_force(rows: tuple[np.ndarray, ...], seed: int, m: int) -> None:
    fam, hi, lo, start, end, owner = rows
    table = addr_table(fam, hi, lo, start, end, owner)
    q, t = _queries(np.random.default_rng(seed), m)
    out = np.empty(m, np.int32)
    hits = table.lookup(q, t, out)
    want = _brute(fam, hi, lo, start, end, owner, q, t)
    assert out.tolist() == want.tolist()
    assert hits == int((want >= 0).sum())


@settings(max_examples=40, deadline=None)
@given(_rows(), st.integers(0, 2**32 - 1))
def test_address_order_input_gives_the_same_table_answers(rows: tuple[np.ndarray, ...],
                                                          seed: int) -> None:
    fam, hi, lo, start, end, owner = rows
    hashed = addr_table(fam, hi, lo, start, end, owner)
    # segments in address order (not hash order): the build takes its other path
    o = np.lexsort((start, lo, hi, fam))
    f, h, lw, s, e, w = (a[o] for a in (fam, hi, lo, start, end, owner))
    change = np.ones(f.size, np.bool_)
    change[1:] = (f[1:] != f[:-1]) | (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])
    g, ss, se, so = kernels.flatten(np.cumsum(change) - 1, s, e, w)
    gf = np.flatnonzero(change)[g]
    plain = AddrTable.build(f[gf], h[gf], lw[gf], ss, se, so)
    assert plain.segments == hashed.segments == ss.size
    q, t = _queries(np.random.default_rng(seed), 200)
    a, b = np.empty(200, np.int32), np.empty(200, np.int32)
    assert plain.lookup(q, t, a) == hashed.lookup(q, t, b)
    assert a.tolist() == b.tolist()


def test_long_runs_use_the_binary_search() -> None:
    n = 50
    fam = np.full(n, 4, np.int8)
    hi = np.zeros(n, np.uint64)
    lo = np.full(n, 0x0A000005, np.uint64)
    start = BASE + np.arange(n, dtype=np.int64) * 10
    end = start + np.where(np.arange(n) % 2 == 0, 10, 5)
    end[-1] = FOREVER
    owner = np.arange(n, dtype=np.int32) + 2
    shuffled = np.random.default_rng(3).permutation(n)  # arrival order is not start order
    table = addr_table(*(a[shuffled] for a in (fam, hi, lo, start, end, owner)))
    assert table.segments == n and table.inline == 1 and table.seg.shape[0] == n - 1
    t = BASE + np.arange(-3, 10 * n + 3, dtype=np.int64)
    q = Addr(np.full(t.size, 4, np.int8), np.zeros(t.size, np.uint64), np.full(t.size, 0x0A000005, np.uint64))
    out = np.empty(t.size, np.int32)
    table.lookup(q, t, out)
    assert out.tolist() == _brute(fam, hi, lo, start, end, owner, q, t).tolist()


def test_empty_table() -> None:
    table = addr_table(np.zeros(0, np.int8), np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                       np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
    q = Addr(np.array([4, 6, 0], np.int8), np.zeros(3, np.uint64), np.zeros(3, np.uint64))
    out = np.empty(3, np.int32)
    assert table.lookup(q, np.zeros(3, np.int64), out) == 0
    assert out.tolist() == [-1, -1, -1]


def test_ipv6_addresses_sharing_a_hash() -> None:
    k1, k2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
    m = (1 << 64) - 1
    hi1, lo1 = 0x20010DB8_00000000, 7
    lo2 = (((lo1 * k1) & m) ^ ((hi1 * k2) & m)) * pow(k1, -1, 1 << 64) & m  # hash(0, lo2) = hash(hi1, lo1)
    fam = np.array([6, 6, 6, 6], np.int8)
    hi = np.array([hi1, 0, hi1, 0], np.uint64)
    lo = np.array([lo1, lo2, lo1, lo2], np.uint64)
    h = kernels.addr_hash(fam, hi, lo)
    assert h[0] == h[1]
    start = BASE + np.array([0, 0, 100, 100], np.int64)
    end = np.array([BASE + 50, FOREVER, FOREVER, BASE + 150], np.int64)
    owner = np.array([2, 3, 4, 5], np.int32)
    table = addr_table(fam, hi, lo, start, end, owner)
    q = Addr(np.full(8, 6, np.int8), np.array([hi1, 0] * 4, np.uint64), np.array([lo1, lo2] * 4, np.uint64))
    t = BASE + np.array([10, 10, 60, 60, 120, 120, 200, 200], np.int64)
    out = np.empty(8, np.int32)
    table.lookup(q, t, out)
    assert out.tolist() == [2, 3, -1, 3, 4, 5, 4, 3]  # the open interval resumes after 150


_NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "0.0.0.0/0", "52.95.0.0/16",
         "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::1/128", "2001:db8:1:2:3::/80", "::/0"]
_IPS = ["10.1.2.3", "10.1.2.4", "10.1.9.9", "10.9.9.9", "52.95.1.1", "8.8.8.8", "2001:db8:1::1",
        "2001:db8:1:2:3::9", "2001:db8:1::2", "2001:db8:2::1", "2a00::1"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_NETS), max_size=8),
       st.lists(st.sampled_from(_IPS), min_size=1, max_size=50))
def test_networks_longest_prefix_equals_brute_force(nets: list[str], ips: list[str]) -> None:
    import ipaddress

    import pyarrow as pa

    from dredge.flowlog.parser import parse_addresses
    from dredge.index.build import build_snapshot

    snap, _ = build_snapshot(None, pa.table({"cidr": pa.array(nets, pa.string()),
                                             "app": pa.array(nets, pa.string())}))
    ids, stats = snap.lookup(parse_addresses(pa.array(ips, pa.string())), np.zeros(len(ips), np.int64))
    got = [snap.owners.column("app")[int(i)].as_py() for i in ids]
    want = []
    for ip in ips:
        a = ipaddress.ip_address(ip)
        best = max((ipaddress.ip_network(n) for n in nets
                    if ipaddress.ip_network(n).version == a.version and a in ipaddress.ip_network(n)),
                   key=lambda n: n.prefixlen, default=None)
        want.append(str(best) if best is not None else
                    ("unknown" if a.version == 4 and a.is_private else "internet"))
    assert got == want  # the apps are the networks as written, which are canonical
    assert stats.cidr == sum(w not in ("unknown", "internet") for w in want)
