"""Index benchmark: memory per interval, lookups per second on one core, build and swap time.

    .venv/bin/python benchmarks/index.py [--intervals 10000000] [--per-address 5]

Synthetic history: ``intervals / per-address`` addresses (3 % IPv6), each handed from owner
to owner over 24 h, half the hand-overs after a gap, the last interval usually left open.
Rates are per CPU-second of one core (``time.process_time``; lookups are single-threaded).
Queries: addresses of the history, 10 % of them addresses the index does not hold, drawn

- uniform: uniformly (every lookup a likely cache miss: the worst case), at times drawn
  uniformly over the 24 h window (so mostly before an address's latest hand-over);
- zipf: Zipf-skewed (hot addresses, like real traffic), times uniform over the window;
- recent: addresses uniform, times in the window's last 5 minutes (what the daemon sees:
  live flows are near "now").

Then ``IndexSnapshot.lookup``, the real caller, on batches of 10k and 100k flows (source
and destination of each flow, CIDR tables and private/public for the unknown addresses).

The baseline is the index as of commit 46f562e (before issue 4's work; ``--baseline COMMIT``
for another), loaded from git and run on the same arrays in the same process.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from dredge.flowlog.parser import Addr
from dredge.index import kernels
from dredge.index.tables import addr_table, address_order

BASELINE_COMMIT = "46f562e"
FOREVER = np.iinfo(np.int64).max
T0 = 1_795_564_800
DAY = 86_400


def history(n_intervals: int, per_address: float, rng: np.random.Generator
            ) -> tuple[Addr, np.ndarray, np.ndarray, np.ndarray]:
    """Per-interval address, start, end, owner: addresses grouped, starts increasing."""
    n_addr = max(1, int(n_intervals / per_address))
    k = rng.poisson(per_address - 1, n_addr) + 1
    k = np.minimum(k, 200)
    scale = n_intervals / k.sum()
    k = np.maximum(1, np.round(k * scale)).astype(np.int64)
    k[-1] += n_intervals - k.sum() if k[-1] + n_intervals - k.sum() > 0 else 0
    n = int(k.sum())
    v6 = rng.random(n_addr) < 0.03
    lo = rng.choice(1 << 24, n_addr, replace=False).astype(np.uint64) + np.uint64(10 << 24)
    hi = np.zeros(n_addr, np.uint64)
    hi[v6] = np.uint64(0x2600_1F18_0000_0000) | rng.integers(0, 1 << 32, v6.sum()).astype(np.uint64)
    lo[v6] = rng.integers(0, 1 << 62, v6.sum()).astype(np.uint64)
    fam = np.where(v6, 6, 4).astype(np.int8)
    which = np.repeat(np.arange(n_addr), k)
    # per address: k hand-overs spread over the day
    pos = np.arange(n) - np.repeat(np.cumsum(k) - k, k)
    span = DAY // k
    start = T0 + pos * span[which] + rng.integers(0, 60, n)
    gap = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 600, n))
    end = start + span[which] - gap
    last = pos == k[which] - 1
    end[last & (rng.random(n) < 0.85)] = FOREVER
    owner = rng.integers(2, 5000, n).astype(np.int32)
    return Addr(fam[which], hi[which], lo[which]), start.astype(np.int64), end.astype(np.int64), owner


RECENT_S = 300


def queries(addr: Addr, n: int, rng: np.random.Generator, skew: bool, recent: bool = False
            ) -> tuple[Addr, np.ndarray]:
    m = addr.fam.size
    if skew:
        idx = np.minimum(rng.zipf(1.3, n) - 1, m - 1)
        idx = rng.permutation(m)[idx]  # hot addresses anywhere in the table
    else:
        idx = rng.integers(0, m, n)
    t = T0 + DAY - rng.integers(1, RECENT_S + 1, n) if recent else T0 + rng.integers(0, DAY, n)
    miss = rng.random(n) < 0.1  # 10 % addresses the index does not hold
    lo = addr.lo[idx].copy()
    lo[miss & (addr.fam[idx] == 4)] = np.uint64(0xC0A80000) + rng.integers(
        0, 1 << 16, int((miss & (addr.fam[idx] == 4)).sum())).astype(np.uint64)
    return Addr(addr.fam[idx], addr.hi[idx], lo), t.astype(np.int64)


def baseline_modules(commit: str = BASELINE_COMMIT) -> tuple[ModuleType, ModuleType]:
    """kernels.py and snapshot.py of ``commit``, importable next to the current ones."""
    tmp = Path(tempfile.mkdtemp(prefix="dredge-index-baseline-"))
    pkg = tmp / "index_baseline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("kernels", "snapshot"):
        src = subprocess.run(["git", "show", f"{commit}:dredge/index/{name}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src.replace("from dredge.index import kernels",
                                                    "from index_baseline import kernels"))
    sys.path.insert(0, str(tmp))
    mods = []
    for name in ("kernels", "snapshot"):
        spec = importlib.util.find_spec(f"index_baseline.{name}")
        assert spec is not None
        mods.append(importlib.import_module(f"index_baseline.{name}"))
    return mods[0], mods[1]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def flat(addr: Addr, start: np.ndarray, end: np.ndarray, owner: np.ndarray
         ) -> tuple[np.ndarray, ...]:
    """The sort + flatten step both versions share (the baseline's build sorted by address;
    either table takes each address's segments together in any order of addresses)."""
    order = address_order(addr.fam, addr.hi, addr.lo, start)
    fam, hi, lo, st, en, ow = (a[order] for a in (addr.fam, addr.hi, addr.lo, start, end, owner))
    change = np.ones(fam.size, np.bool_)
    change[1:] = (fam[1:] != fam[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    g, s, e, o = kernels.flatten(np.cumsum(change) - 1, st, en, ow)
    f = np.flatnonzero(change)[g]
    return fam[f], hi[f], lo[f], s, e, o


def rate(table: Any, q: Addr, t: np.ndarray, out: np.ndarray, repeat: int) -> float:
    """Lookups per CPU-second of this process (best of ``repeat``): the machine is shared,
    so wall time would count other processes' turns on the core."""
    table.lookup(q, t, out)  # compile / warm
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        table.lookup(q, t, out)
        best = min(best, time.process_time() - t0)
    return q.fam.size / best


NETWORKS = (("10.0.0.0", 8), ("192.168.0.0", 16), ("172.16.0.0", 12), ("52.95.0.0", 16),
            ("54.239.0.0", 16), ("52.94.0.0", 22))


def snapshot_of(snapshot_mod: ModuleType, table: Any) -> Any:
    """An IndexSnapshot of ``table`` and a few CIDR tables (built by that version's classes)."""
    import ipaddress

    import pyarrow as pa

    cidrs = []
    for owner, (net, prefix) in enumerate(sorted(NETWORKS, key=lambda n: -n[1])):
        one = np.ones(1)
        t = snapshot_mod.AddrTable.build(
            (one * 4).astype(np.int8), np.zeros(1, np.uint64),
            np.array([int(ipaddress.ip_address(net))], np.uint64), np.zeros(1, np.int64),
            np.full(1, FOREVER, np.int64), np.array([owner + 5000], np.int32))
        cidrs.append(snapshot_mod.CidrTable(4, prefix, t))
    return snapshot_mod.IndexSnapshot(pa.table({"app": pa.array([], pa.string())}), table, tuple(cidrs))


def batch_rate(snap: Any, src: Addr, dst: Addr, t: np.ndarray, batch: int, repeat: int) -> float:
    """Lookups per CPU-second through ``IndexSnapshot.lookup``, flows in batches of ``batch``
    rows: source and destination of each batch, as the enricher does."""
    n = t.size - t.size % batch
    parts = [(Addr(src.fam[i:i + batch], src.hi[i:i + batch], src.lo[i:i + batch]),
              Addr(dst.fam[i:i + batch], dst.hi[i:i + batch], dst.lo[i:i + batch]), t[i:i + batch])
             for i in range(0, n, batch)]
    snap.lookup(*parts[0][::2])  # warm
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for s, d, tb in parts:
            snap.lookup(s, tb)
            snap.lookup(d, tb)
        best = min(best, time.process_time() - t0)
    return 2 * n / best


def manager_timing(n_intervals: int, per_address: float, rng: np.random.Generator) -> None:
    """The live path: events (an assignment per interval, a release per closed one) merged
    into an IndexManager's history, one rebuild (merge, compact, derive, build, swap), a
    second rebuild after 1,000 new events, state save and load."""
    from dredge.index.history import Events
    from dredge.index.live import IndexManager
    from dredge.index.providers.config import IndexConfig

    addr, start, end, owner = history(n_intervals, per_address, rng)
    closed = np.flatnonzero(end != FOREVER)
    ev = Events(np.concatenate([addr.fam, addr.fam[closed]]), np.concatenate([addr.hi, addr.hi[closed]]),
                np.concatenate([addr.lo, addr.lo[closed]]), np.concatenate([start, end[closed]]),
                np.concatenate([np.ones(start.size, np.int8), np.zeros(closed.size, np.int8)]),
                np.concatenate([owner % 1000 + 2, np.full(closed.size, -1, np.int32)]).astype(np.int32))
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "index.arrow"
        m = IndexManager(IndexConfig(retention_s=10 * DAY, state_path=str(state)),
                         clock=lambda: float(T0 + DAY))
        for i in range(1000):
            m.intake.catalog.intern((f"app{i}", None, None, None, None, None, None, "instance"))
        m.intake.submit_events("bench", ev)
        t0 = time.perf_counter()
        snap = m.rebuild_now()
        t_first = time.perf_counter() - t0
        small = ev.take(rng.integers(0, len(ev), 1000))
        m.intake.submit_events("bench", Events(small.fam, small.hi, small.lo, small.time + 1,
                                               small.kind, small.owner))
        t0 = time.perf_counter()
        m.rebuild_now()
        t_again = time.perf_counter() - t0
        t0 = time.perf_counter()
        size = m.save_now()
        t_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        m2 = IndexManager.from_state(state)
        t_load = time.perf_counter() - t0
        hist = m.history
        hist_bytes = sum(int(a.nbytes) for a in (hist.src, hist.seq, *(
            getattr(hist.events, f) for f in ("fam", "hi", "lo", "time", "kind", "owner"))))
        print()
        print(f"live manager, {snap.intervals:,} intervals from {len(ev):,} events: "
              f"first rebuild {t_first:.2f} s, rebuild after 1,000 new events {t_again:.2f} s")
        print(f"  snapshot {snap.nbytes / snap.intervals:.1f} B/interval, history "
              f"{hist_bytes / len(hist):.1f} B/event; state file {size / 1e6:,.0f} MB, "
              f"save {t_save:.2f} s, load + rebuild {t_load:.2f} s "
              f"({m2.current().intervals:,} intervals)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--intervals", type=int, default=10_000_000)
    ap.add_argument("--per-address", type=float, default=5.0)
    ap.add_argument("--queries", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--baseline", default=BASELINE_COMMIT,
                    help="the commit to compare with (default: the index before issue 4's work)")
    ap.add_argument("--manager-intervals", type=int, default=2_000_000,
                    help="history size for the live manager's rebuild/save/load timing (0 = skip)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    addr, start, end, owner = history(args.intervals, args.per_address, rng)
    n = start.size
    print(f"history: {n:,} intervals, {np.unique(addr.lo).size:,} addresses, "
          f"{(addr.fam == 6).mean():.1%} IPv6 intervals, generated in {time.perf_counter() - t0:.1f} s")
    qs = {name: queries(addr, args.queries, rng, skew, recent) for name, skew, recent in
          (("uniform", False, False), ("zipf", True, False), ("recent", False, True))}
    dsts = {name: queries(addr, args.queries, rng, False, name == "recent")[0]
            for name in ("uniform", "recent")}
    batches = (10_000, 100_000)

    t0 = time.perf_counter()
    segs = flat(addr, start, end, owner)
    t_flat = time.perf_counter() - t0
    print(f"sort + flatten (shared by both): {t_flat:.2f} s -> {segs[0].size:,} segments")

    rows = []
    out = np.empty(args.queries, np.int32)
    results: dict[str, dict[str, np.ndarray]] = {}
    impls: list[tuple[str, ModuleType]] = []
    if not args.no_baseline:
        _, base_snapshot = baseline_modules(args.baseline)
        impls.append(("baseline " + args.baseline, base_snapshot))
    from dredge.index import snapshot as current_snapshot
    impls.append(("current", current_snapshot))
    for name, mod in impls:
        cls = mod.AddrTable
        gc.collect()
        cls.build(*(a[:1000] for a in segs))  # compile
        t0 = time.perf_counter()
        table = cls.build(*segs)
        t_table = time.perf_counter() - t0
        r = {q: rate(table, *qs[q], out, args.repeat) for q in qs}
        results[name] = {}
        for q in qs:
            table.lookup(*qs[q], out)
            results[name][q] = out.copy()
        snap = snapshot_of(mod, table)
        rb = {(q, b): batch_rate(snap, qs[q][0], dsts[q], qs[q][1], b, args.repeat)
              for q in dsts for b in batches}
        rows.append((name, table.nbytes / n, t_table, r, rb))
        del table, snap
    if len(results) == 2:
        a, b = results.values()
        assert all(np.array_equal(a[q], b[q]) for q in qs), "baseline and current disagree"
        print("baseline and current lookups agree on every query")

    print()
    print(f"{'implementation':<18} {'bytes/interval':>15} {'table build s':>14} "
          + " ".join(f"{'lookups/s ' + q:>17}" for q in qs))
    for name, bpi, tb, r, _ in rows:
        print(f"{name:<18} {bpi:>15.1f} {tb:>14.2f} "
              + " ".join(f"{r[q] / 1e6:>16.1f}M" for q in qs))
    if len(rows) == 2:
        (_, b0, tb0, r0, _), (_, b1, tb1, r1, _) = rows
        print(f"{'ratio current/base':<18} {b1 / b0:>15.2f} {tb1 / tb0:>14.2f} "
              + " ".join(f"{r1[q] / r0[q]:>16.2f}x" for q in qs))
    print()
    print("IndexSnapshot.lookup, src and dst per batch (lookups/s; 10 % unknown -> CIDR tables):")
    cols = [(q, b) for q in dsts for b in batches]
    print(f"{'implementation':<18} " + " ".join(f"{f'{q} {b // 1000}k':>15}" for q, b in cols))
    for name, _, _, _, rb in rows:
        print(f"{name:<18} " + " ".join(f"{rb[c] / 1e6:>14.1f}M" for c in cols))
    if len(rows) == 2:
        rb0, rb1 = rows[0][4], rows[1][4]
        print(f"{'ratio current/base':<18} " + " ".join(f"{rb1[c] / rb0[c]:>14.2f}x" for c in cols))

    # whole build from interval arrays (what the live manager does) and the swap
    gc.collect()
    t0 = time.perf_counter()
    table = addr_table(addr.fam, addr.hi, addr.lo, start, end, owner)
    t_build = time.perf_counter() - t0
    holder = {"snap": table}
    t0 = time.perf_counter_ns()
    for _ in range(1000):
        holder["snap"] = table
    t_swap = (time.perf_counter_ns() - t0) / 1000
    print()
    print(f"full build from {n:,} intervals (sort, flatten, tables): {t_build:.2f} s; "
          f"swap (one reference assignment): {t_swap:.0f} ns")
    del table, holder
    if args.manager_intervals:
        manager_timing(args.manager_intervals, args.per_address, rng)
    print(f"peak RSS of this process: {rss_mb():,.0f} MB; input arrays "
          f"{sum(a.nbytes for a in (addr.fam, addr.hi, addr.lo, start, end, owner)) / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
