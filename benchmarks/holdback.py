"""Attribution accuracy with late assignment events: holdback vs none vs "current owner".

    .venv/bin/python benchmarks/holdback.py [--hours 3] [--flows 1000000] [--delays 30,120,600]

The sample generator's ownership history (``dredge.generate``) becomes assignment events
(``dredge.generate.events``) that arrive up to D seconds late (uniform). Flows hit the
generator's reassigned addresses (slots) at uniform times; each flow reaches the daemon
``lag`` seconds after it started (flow-log aggregation and delivery, uniform in
[--lag-min, --lag-max]) and is enriched after a holdback of H seconds, against the index as
it stood then: a real :class:`IndexManager` fed in processing-time order, rebuilt every
``--tick`` seconds of simulated time (so its view may also be up to one tick old).

Strategies, each a share of flows whose app matches the truth (the full history, at the
flow's own start time):

- ``holdback H``: lookup at the flow's time, index as of arrival + H;
- ``current owner``: lookup at processing time (arrival), index as of arrival: what a
  non-versioned "who owns it now" table gives.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from dredge.flowlog.parser import parse_addresses
from dredge.generate.estate import build_estate
from dredge.generate.events import app_names, assignment_events
from dredge.generate.owners import build_intervals
from dredge.index.live import IndexManager
from dredge.index.providers.config import IndexConfig
from dredge.index.snapshot import IndexSnapshot

START = 1_795_564_800


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def app_array(snap: IndexSnapshot) -> np.ndarray:
    return np.array(snap.owners.column("app").to_pylist(), dtype=object)


def simulate(args: argparse.Namespace, max_delay: int, holdbacks: list[int]
             ) -> tuple[dict[str, float], int, int]:
    rng = np.random.Generator(np.random.PCG64(args.seed))
    estate = build_estate(rng, accounts=1, apps=40, flows=args.flows)
    end = START + int(args.hours * 3600)
    iv = build_intervals(rng, estate, START, end)
    ev = assignment_events(rng, iv, max_delay)
    names = np.array([*app_names(estate), "?"], dtype=object)
    slot_addr = parse_addresses(pa.array(estate.text[: estate.n_slots]))

    # truth: every event, on time
    truth_m = IndexManager(IndexConfig(retention_s=10 * 86400), clock=Clock(end))
    sink = truth_m.sink("truth", "events")
    owner_of = {a: (str(names[a]),) + (None,) * 7 for a in range(len(names) - 1)}
    sink.submit([estate.text[s] for s in ev.slot.tolist()], ev.time,
                [None if a < 0 else owner_of[a] for a in ev.app.tolist()])
    truth_snap = truth_m.rebuild_now()

    # flows: after a warm-up hour, so the index has seen the addresses' first owners
    n = args.flows
    slot = rng.integers(0, estate.n_slots, n)
    t_flow = rng.integers(START + 3600, end - args.lag_max - max(holdbacks) - args.tick, n)
    addr = slot_addr.take(slot)
    truth_ids, _ = truth_snap.lookup(addr, t_flow)
    truth = app_array(truth_snap)[truth_ids]
    lag = rng.integers(args.lag_min, args.lag_max + 1, n)
    arrival = t_flow + lag

    strategies = {f"holdback {h} s": (arrival + h, False) for h in holdbacks}
    strategies["current owner (no holdback)"] = (arrival, True)
    correct = dict.fromkeys(strategies, 0)

    clock = Clock(START)
    m = IndexManager(IndexConfig(retention_s=10 * 86400), clock=clock)
    live = m.sink("events", "events")
    texts = estate.text
    ev_app = ev.app.tolist()
    order = {k: np.argsort(p, kind="stable") for k, (p, _) in strategies.items()}
    sorted_p = {k: strategies[k][0][o] for k, o in order.items()}
    pos = dict.fromkeys(strategies, 0)
    e = 0
    # events before the window arrive first
    tick = args.tick
    t = START
    stop = int(max(p.max() for p, _ in strategies.values())) + tick
    while t <= stop:
        k = int(np.searchsorted(ev.arrival, t, side="right"))
        if k > e:
            live.submit([texts[s] for s in ev.slot[e:k].tolist()], ev.time[e:k],
                        [None if a < 0 else owner_of[a] for a in ev_app[e:k]])
            e = k
        clock.now = t
        snap = m.rebuild_now()
        apps = app_array(snap)
        for name, (_, at_processing) in strategies.items():
            j = int(np.searchsorted(sorted_p[name], t + tick, side="left"))
            rows = order[name][pos[name]:j]
            pos[name] = j
            if rows.size == 0:
                continue
            when = arrival[rows] if at_processing else t_flow[rows]
            ids, _ = snap.lookup(addr.take(rows), when)
            correct[name] += int((apps[ids] == truth[rows]).sum())
        t += tick
    reassigned = len(np.unique(iv.slot))
    return {k: v / n for k, v in correct.items()}, len(ev), reassigned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--delays", default="30,120,600")
    ap.add_argument("--lag-min", type=int, default=60)
    ap.add_argument("--lag-max", type=int, default=600)
    ap.add_argument("--tick", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(f"{args.flows:,} flows over {args.hours} h; flow delivery lag uniform "
          f"[{args.lag_min}, {args.lag_max}] s; index rebuilt every {args.tick} s of simulated time")
    header = f"{'max event delay D':>18} | {'strategy':<30} | {'right app':>9}"
    print(header)
    print("-" * len(header))
    for d in (int(x) for x in args.delays.split(",")):
        t0 = time.perf_counter()
        holdbacks = sorted({0, d // 2, d, d + args.tick})
        shares, n_events, n_ips = simulate(args, d, holdbacks)
        for name, share in shares.items():
            print(f"{d:>16} s | {name:<30} | {share:>8.3%}")
        print(f"{'':>18} | ({n_events:,} events, {n_ips:,} addresses, "
              f"{time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
