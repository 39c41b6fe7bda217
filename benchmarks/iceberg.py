"""The Iceberg ledger's cost: commit latency and rows/s by commit size, and what committing
every ``commit_interval_s`` takes from the daemon's throughput.

    python benchmarks/iceberg.py [--sizes 1000,10000,100000,1000000] [--repeats 3]
                                 [--warehouses local,s3] [--pipeline-s 20] [--interval 5]

1. commits   the daemon's own commit path (``IcebergLedger.add`` + ``commit``: positions
             checked and carried forward, one atomic append) into a fresh table per warehouse
             (SQLite SQL catalog; warehouse a local folder, and a bucket on a moto server on
             loopback), ``--repeats`` commits per size into the same table (the table grows:
             later commits read more metadata). Prints p50 and max commit seconds, rows/s.
2. pipeline  the hot path alone (parse -> enrich -> roll up of generated flow-log files, in a
             loop, one core) for ``--pipeline-s`` seconds: flows/s and rolled rows/s. Then
             (a) the rows that rate makes in one ``--interval`` committed alone: the commit's
             seconds / interval is the share of one core a commit per interval takes at full
             speed; (b) the loop again while a thread hands each file's rolled rows to the
             ledger and commits every ``--interval`` seconds: flows/s with the commits, in the
             same run, and the ratio to the loop alone.

Prints numbers only; no thresholds. Timings on a shared machine are noisy: compare the
ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dredge.enrich.rollup import FLOWS_SCHEMA
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.ledger import IcebergLedger
from dredge.testing import MotoServer

KEY = ("bench", "shardId-000000000000")


def flows_table(n: int, seed: int) -> pa.Table:
    """``n`` rolled-up rows in the ``flows`` schema over one hour (300 apps, so rows do not
    compress to nothing)."""
    rng = np.random.default_rng(seed)
    when = np.datetime64("2026-11-25T00:00:00", "s") + rng.integers(0, 60, n).astype("timedelta64[m]")
    apps = np.array([f"app-{i:03d}" for i in range(300)])
    cols: dict[str, Any] = {"window_start": when}
    for side in ("src", "dst"):
        app = apps[rng.integers(0, 300, n)]
        cols.update({f"{side}_app": app, f"{side}_cluster": app, f"{side}_account": "123456789012",
                     f"{side}_region": "us-east-1", f"{side}_az": "use1-az1", f"{side}_vpc": "vpc-1",
                     f"{side}_subnet": "subnet-1", f"{side}_type": "instance"})
    cols.update(protocol=rng.choice([6, 17], n), action="ACCEPT", flow_direction="egress",
                traffic_path=1, bytes=rng.integers(40, 1 << 24, n),
                packets=rng.integers(1, 1 << 12, n), flows=rng.integers(1, 64, n))
    arrays = {}
    for f in FLOWS_SCHEMA:
        value = cols[f.name]
        arrays[f.name] = pa.array(value if isinstance(value, np.ndarray) else [value] * n).cast(f.type)
    return pa.table(arrays, schema=FLOWS_SCHEMA)


def catalog(work: Path, name: str, warehouse: str, s3: MotoServer | None) -> IcebergConfig:
    props = {"type": "sql", "uri": f"sqlite:///{work / (name + '.db')}", "warehouse": warehouse}
    if s3 is not None:
        props.update({"s3.endpoint": s3.endpoint, "s3.access-key-id": "testing",
                      "s3.secret-access-key": "testing", "s3.region": "us-east-1"})
    return IcebergConfig(catalog=props, table=name)


def ledger_for(config: IcebergConfig) -> IcebergLedger:
    ledger = IcebergLedger(config, "bench")
    ledger.open()
    ledger.expect(KEY, 1, None)
    return ledger


def bench_commits(config: IcebergConfig, sizes: list[int], repeats: int) -> None:
    ledger = ledger_for(config)
    seq = 0
    for size in sizes:
        rows = flows_table(size, seed=size)
        times = []
        stored = 0
        for _ in range(repeats):
            seq += 1
            ledger.add(KEY, 1, [rows], (str(seq), 0))
            t0 = time.perf_counter()
            result = ledger.commit()
            times.append(time.perf_counter() - t0)
            # the commit sums rows of one key (ledger.combine): random keys repeat a little
            assert 0 < result.rows <= size and result.snapshot_id is not None, result
            stored = result.rows
        p50 = statistics.median(times)
        print(f"  {size:>9,} rows  commit p50 {p50 * 1000:8.1f} ms  max {max(times) * 1000:8.1f} ms"
              f"  {size / p50:>12,.0f} rows/s in  ({stored:,} rows written after combining)")
    ledger.close()


# -- the pipeline with and without the ledger -------------------------------------------------


def pipeline_inputs(work: Path, flows: int) -> tuple[list[Any], Any]:
    from dredge.generate import generate
    from dredge.snapshots import StaticSnapshots
    from dredge.sources.files import discover

    out = work / "logs"
    generate(out, flows=flows, seed=21, hours=1, parquet_share=0.0, malformed_share=0.0)
    refs, _ = discover([str(out / "logs")])
    snapshot = StaticSnapshots.from_files([str(out / "owners.jsonl")], [str(out / "networks.csv")]).current()
    return refs, snapshot


def run_pipeline(refs: list[Any], snapshot: Any, seconds: float,
                 ledger: IcebergLedger | None, interval: float,
                 keep: list[Any] | None = None, keep_rows: int = 0) -> dict[str, float]:
    """flows/s of the loop (with ``ledger``: committing every ``interval`` s from a thread);
    ``keep`` collects rolled batches up to ``keep_rows`` rows."""
    from dredge.flowlog.fields import DEFAULT_FORMAT
    from dredge.pipeline import process_file
    from dredge.sinks.deadletter import DeadLetters
    from dredge.sources.files import sniff

    dead = DeadLetters(None)
    fmt = DEFAULT_FORMAT
    stop = threading.Event()
    commits: list[float] = []

    def committer() -> None:
        assert ledger is not None
        while not stop.wait(interval):
            t0 = time.perf_counter()
            ledger.commit()
            commits.append(time.perf_counter() - t0)

    thread = threading.Thread(target=committer, daemon=True) if ledger is not None else None
    if thread is not None:
        thread.start()
    flows = rows = 0
    seq = 0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - t0 < seconds:
        for ref in refs:
            result = process_file(ref, sniff(ref), snapshot, 60, fmt, dead)
            flows += result.counts.data
            rows += result.rows.num_rows if result.rows is not None else 0
            if keep is not None and result.rows is not None and sum(
                    p.num_rows for p in keep) < keep_rows:
                keep.append(result.rows)
            if ledger is not None and result.rows is not None:
                seq += 1
                ledger.add(KEY, 1, [result.rows], (str(seq), 0))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stop.set()
    if thread is not None:
        thread.join()
        assert ledger is not None
        ledger.commit()  # what is left, after the timed loop
    return {"flows_s": flows / wall, "flows_cpu_s": flows / cpu, "rows_s": rows / wall,
            "commits": len(commits),
            "commit_s": statistics.mean(commits) if commits else 0.0,
            "flows_per_commit": flows / max(1, len(commits))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warehouses", default="local,s3")
    ap.add_argument("--pipeline-s", type=float, default=20.0)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--flows", type=int, default=200_000, help="flows of the pipeline's input")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    wanted = [w for w in args.warehouses.split(",") if w]

    with tempfile.TemporaryDirectory(prefix="dredge-bench-iceberg-") as tmp:
        work = Path(tmp)
        moto = MotoServer(work) if "s3" in wanted else None
        if moto is not None:
            moto.start()
        try:
            import boto3

            if moto is not None:
                boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing"
                             ).create_bucket(Bucket="dredge-bench")
            print("1. commits (SQLite catalog; the daemon's IcebergLedger.commit)")
            for where in wanted:
                print(f" warehouse {where}")
                warehouse = f"file://{work / 'wh'}" if where == "local" else "s3://dredge-bench/wh"
                bench_commits(catalog(work, f"commits_{where}", warehouse, moto), sizes, args.repeats)

            print(f"2. pipeline, one core, {args.pipeline_s:g} s each, commits every "
                  f"{args.interval:g} s (warehouse {wanted[-1]})")
            refs, snapshot = pipeline_inputs(work, args.flows)
            first = run_pipeline(refs, snapshot, 2.0, None, args.interval)  # compiles the kernels
            parts: list[Any] = []
            alone = run_pipeline(refs, snapshot, args.pipeline_s, None, args.interval, parts,
                                 int(first["rows_s"] * 2 * args.interval))
            print(f"  alone         {alone['flows_s']:>12,.0f} flows/s  "
                  f"{alone['flows_cpu_s']:>12,.0f} flows per CPU-second  "
                  f"{alone['rows_s']:>10,.0f} rolled rows/s")
            where = wanted[-1]

            def fresh(name: str) -> IcebergLedger:
                wh = f"file://{work / name}" if where == "local" else f"s3://dredge-bench/{name}"
                return ledger_for(catalog(work, name, wh, moto))

            per_interval = int(alone["rows_s"] * args.interval)
            ledger = fresh("interval")
            batch: list[Any] = []
            for p in parts:
                if sum(b.num_rows for b in batch) >= per_interval:
                    break
                batch.append(p)
            ledger.add(KEY, 1, batch, ("1", 0))
            t0 = time.perf_counter()
            done = ledger.commit()
            alone_commit = time.perf_counter() - t0
            ledger.close()
            print(f"  (a) one interval's rows ({done.rows:,}) committed alone: "
                  f"{alone_commit * 1000:,.0f} ms = {alone_commit / args.interval:.1%} of "
                  f"{args.interval:g} s of one core")
            ledger = fresh("concurrent")
            with_ledger = run_pipeline(refs, snapshot, args.pipeline_s, ledger, args.interval)
            ledger.close()
            print(f"  (b) with the commit thread  {with_ledger['flows_s']:>12,.0f} flows/s  "
                  f"{with_ledger['flows_cpu_s']:>12,.0f} flows per CPU-second  "
                  f"({with_ledger['commits']:.0f} commits in the loop, mean "
                  f"{with_ledger['commit_s'] * 1000:,.0f} ms)")
            print(f"      ratio {with_ledger['flows_s'] / alone['flows_s']:.3f} of the throughput "
                  "alone")
        finally:
            if moto is not None:
                moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
