"""What the service port costs the hot path: a rollup of parsed flows with and without it.

    .venv/bin/python benchmarks/port.py [--flows 2000000] [--repeat 7]

Both sides run in this process, on the same columns, in turns (the best of ``--repeat`` CPU
times each), so the ratio holds on a busy machine:

- ``baseline``: the rollup as before the port, every flow's port "none" (one group per key
  as before; the key packing is the same code);
- ``port``: the rule (``flowlog.ports.lower_port``, from srcport/dstport/protocol as the
  parser leaves them) plus the rollup with the port folded past ``ephemeral_from``.

It prints flows/s per core of each and their ratio, and the extra nanoseconds per flow. The
groups grow with the port (a few hundred distinct ports), which the rollup pays for too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from dredge.enrich.rollup import Rollup
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.parser import Addr
from dredge.flowlog.ports import lower_port

SERVERS = np.array([443, 80, 5432, 6379, 9092, 8080, 3306, 22, 53, 123])


def columns(n: int, seed: int) -> tuple[FlowColumns, tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    server = SERVERS[rng.integers(0, len(SERVERS), n)]
    client = rng.integers(32_768, 61_000, n)
    flip = rng.random(n) < 0.5
    src, dst = np.where(flip, server, client), np.where(flip, client, server)
    proto = rng.choice(np.array([6, 17, 1], np.int16), n, p=[0.8, 0.15, 0.05])
    nulls = np.zeros(n, np.bool_)
    zero = Addr(np.zeros(n, np.int8), np.zeros(n, np.uint64), np.zeros(n, np.uint64))
    cols = FlowColumns(start=1_795_572_000 + rng.integers(0, 3600, n), bytes=rng.integers(40, 10**6, n),
                       packets=rng.integers(1, 1000, n), protocol=proto,
                       action=rng.integers(1, 3, n).astype(np.int8),
                       flow_direction=rng.integers(0, 3, n).astype(np.int8),
                       traffic_path=rng.integers(0, 9, n).astype(np.int8), src=zero, dst=zero)
    owners = rng.integers(0, 2000, (2, n)).astype(np.int32)
    return cols, (src, nulls, dst, nulls, proto), owners[0], owners[1]


def best(f: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        f()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    cols, ports, src_owner, dst_owner = columns(args.flows, 7)

    def baseline() -> None:
        cols.port = np.full(cols.n, -1, np.int32)
        Rollup(60).add(cols, src_owner, dst_owner)

    def with_port() -> None:
        cols.port = lower_port(*ports)
        Rollup(60).add(cols, src_owner, dst_owner)

    with_port()  # compile and warm both once
    baseline()
    base = best(baseline, args.repeat)
    port = best(with_port, args.repeat)
    n = args.flows
    print(f"flows                 {n:,}")
    print(f"baseline (no port)    {n / base:,.0f} flows/s per core")
    print(f"with the port         {n / port:,.0f} flows/s per core")
    print(f"ratio port/baseline   {base / port:.3f} (throughput)")
    print(f"extra per flow        {(port - base) / n * 1e9:.1f} ns")


if __name__ == "__main__":
    main()
