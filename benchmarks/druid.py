"""Druid ingestion: the Kinesis output stream (live path) against SQL-based backfill (REPLACE).

    make druid-up
    python benchmarks/druid.py [--flows 50000] [--hours 2] [--shards 2] [--pack-bytes 65536]
    python benchmarks/druid.py --only backfill --flows 41667 --hours 1 --staging local,s3 --repeat 2

Generates a sample, replays it into DuckDB (the ledger), then into two fresh datasources:

1. encode    rows -> JSON lines -> records packed per app pair: rows/s of Dredge's own work
2. stream    a Kinesis supervisor submitted and RUNNING first; every row published to
             kinesis-local (PutRecords, batches of 500): rows/s published; then the time from
             the last PutRecords to Druid SQL answering the right totals (publish -> queryable).
             Then one more file's rows on the running task: steady-state publish -> queryable.
             Also a slice published one row per record (pack_bytes 0), for the ratio.
3. backfill  `dredge replay --sink druid`'s push: every hour REPLACEd from the store, per
             staging (`--staging`: local files, and/or s3 objects on druid.sh's moto server,
             which the local Druid reads with druid-s3-extensions), each into a fresh
             datasource, `--repeat` times alternating the order: rows/s of the whole push (read
             the store, stage, REPLACE), and submit -> queryable (the task ends once segments load).

Ports from the same environment variables as infra/druid/druid.sh. Prints numbers only.
kinesis-local (kinesis-mock) slows down as a stream grows (each PutRecords costs more with the
records already in it): the stream numbers are the emulator's, not AWS's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa

from dredge.cli import main as dredge
from dredge.generate import generate
from dredge.sinks.druid import DruidAPI, DruidConfig, SupervisorConfig, supervisor_spec
from dredge.sinks.druid_backfill import DruidBackfill
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sinks.kinesis_out import KinesisOutConfig, KinesisPublisher
from dredge.sinks.rowcodec import encode, pack

ROUTER = f"http://127.0.0.1:{os.environ.get('DRUID_ROUTER_PORT', 18888)}"
S3 = f"http://127.0.0.1:{os.environ.get('DRUID_S3_PORT', 15055)}"
KINESIS = f"http://127.0.0.1:{os.environ.get('KINESIS_LOCAL_PORT', 14568)}"
CREDS = {"aws_access_key_id": "dredge", "aws_secret_access_key": "dredge"}


def sums(api: DruidAPI, ds: str) -> tuple[int, int, int]:
    try:
        rows = api.sql(f'SELECT SUM(bytes) AS b, SUM(packets) AS p, SUM(flows) AS f FROM "{ds}"')
    except Exception:
        return (0, 0, 0)  # not queryable yet
    r = rows[0] if rows else {}
    return (int(r.get("b") or 0), int(r.get("p") or 0), int(r.get("f") or 0))


def table_sums(t: pa.Table) -> tuple[int, int, int]:
    return tuple(int(t.column(m).to_numpy().sum()) for m in ("bytes", "packets", "flows"))  # type: ignore[return-value]


def wait_sums(api: DruidAPI, ds: str, want: tuple[int, int, int], timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if sums(api, ds) == want:
            return time.perf_counter() - t0
        time.sleep(0.25)
    raise SystemExit(f"{ds}: Druid did not reach {want} in {timeout:.0f} s (has {sums(api, ds)})")


def wait_reading(api: DruidAPI, supervisor: str, timeout: float = 180) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        active = api.supervisor_status(supervisor).get("activeTasks") or []
        if any(t.get("currentOffsets") for t in active):
            return time.perf_counter() - t0
        time.sleep(0.5)
    raise SystemExit(f"supervisor {supervisor}: no task reading after {timeout:.0f} s")


def create_stream(shards: int) -> str:
    kin = boto3.client("kinesis", endpoint_url=KINESIS, region_name="us-east-1", **CREDS)
    name = f"dredge-bench-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, ShardCount=shards)
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
    return name


def drop(api: DruidAPI, ds: str) -> None:
    try:
        api.request("DELETE", f"/druid/coordinator/v1/datasources/{ds}")
        api.request("POST", "/druid/indexer/v1/task", {
            "type": "kill", "dataSource": ds, "interval": "2000-01-01/2100-01-01"}, overlord=True)
    except Exception as exc:
        print(f"  (cleanup of {ds} failed: {exc})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=50_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--pack-bytes", type=int, default=KinesisOutConfig.pack_bytes)
    ap.add_argument("--unpacked-rows", type=int, default=2000,
                    help="rows published one per record, for the ratio (0: skip)")
    ap.add_argument("--only", choices=["stream", "backfill"], help="run one path only")
    ap.add_argument("--staging", default="local", help="backfill staging(s), comma-separated: "
                    "local, s3 (default: local)")
    ap.add_argument("--repeat", type=int, default=1, help="backfill runs per staging")
    ap.add_argument("--keep", action="store_true", help="keep the datasources")
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", CREDS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", CREDS["aws_secret_access_key"])

    api = DruidAPI(DruidConfig(url=ROUTER))
    why = api.healthy()
    if why:
        print(f"Druid not reachable: {why} (make druid-up)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="dredge-druid-bench-"))
    generate(tmp / "gen", flows=args.flows, seed=23, hours=args.hours)
    db = tmp / "ledger.duckdb"
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        dredge(["--log-level", "error", "replay", str(tmp / "gen" / "logs"), "--index",
                str(tmp / "gen" / "owners.jsonl"), "--cidrs", str(tmp / "gen" / "networks.csv"),
                "--db", str(db), "--no-progress", "--json"])
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone='UTC'")
    rows = con.sql("SELECT * FROM flows ORDER BY window_start").to_arrow_table()
    con.close()
    want = table_sums(rows)
    n = rows.num_rows
    print(f"sample       {args.flows:,} flows over {args.hours:g} h -> {n:,} rolled-up rows "
          f"(window 60 s)")

    # 1. encode + pack: Dredge's own cost
    t0 = time.perf_counter()
    lines, keys = encode(rows)
    packed = pack(lines, keys, args.pack_bytes)
    enc = time.perf_counter() - t0
    size = sum(len(x) for x in lines)
    print(f"encode       {n / enc:,.0f} rows/s ({size / n:.0f} B/row; {len(packed.data):,} records "
          f"of <= {args.pack_bytes // 1024} KiB, {n / len(packed.data):.1f} rows/record)")

    created: list[str] = []
    if args.only != "backfill":
        stream_path(api, args, rows, want, created)
    if args.only != "stream":
        backfill_path(api, args, db, tmp, want, created)
    if not args.keep:
        for ds in created:
            drop(api, ds)
    return 0


def stream_path(api: DruidAPI, args: argparse.Namespace, rows: pa.Table,
                want: tuple[int, int, int], created: list[str]) -> None:
    delete_stream_later: list[str] = []
    try:
        _stream_path(api, args, rows, want, created, delete_stream_later)
    finally:
        deadline = time.perf_counter() + 90  # the terminated supervisor's task publishes first
        while created and time.perf_counter() < deadline and api.request(
                "GET", f"/druid/indexer/v1/tasks?state=running&datasource={created[-1]}",
                overlord=True):
            time.sleep(1)
        kin = boto3.client("kinesis", endpoint_url=KINESIS, region_name="us-east-1", **CREDS)
        for name in delete_stream_later:  # kinesis-local keeps streams in memory
            kin.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def _stream_path(api: DruidAPI, args: argparse.Namespace, rows: pa.Table,
                 want: tuple[int, int, int], created: list[str],
                 delete_stream_later: list[str]) -> None:
    n = rows.num_rows
    stream_ds = f"dredge_bench_stream_{uuid.uuid4().hex[:6]}"
    created.append(stream_ds)
    stream = create_stream(args.shards)
    sup = supervisor_spec(stream_ds, SupervisorConfig(stream=stream, endpoint=KINESIS,
                                                      task_count=min(args.shards, 1)))
    result: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        api.submit_supervisor(sup)
        api.wait_supervisor_running(stream_ds, 180)
        # a first small batch starts the task; then the bulk goes to a task already reading
        first, rest = rows.slice(0, 100), rows.slice(100)
        pub = KinesisPublisher(KinesisOutConfig(stream=stream, endpoint_url=KINESIS,
                                                pack_bytes=args.pack_bytes))
        pub.publish(first)
        wait_reading(api, stream_ds)
        wait_sums(api, stream_ds, table_sums(first))
        result["cold"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        r = pub.publish(rest)
        t2 = time.perf_counter()
        result["publish_rows_s"] = rest.num_rows / (t2 - t1)
        result["calls"] = r.calls
        result["queryable_s"] = wait_sums(api, stream_ds, want)
        # steady state: a small batch (one minute's rows) on the running task
        extra = rows.slice(0, min(200, n))
        t3 = time.perf_counter()
        pub.publish(extra)
        w = tuple(a + b for a, b in zip(want, table_sums(extra), strict=True))
        result["warm_s"] = time.perf_counter() - t3 + wait_sums(api, stream_ds, w)  # type: ignore[arg-type]
    finally:
        api.terminate_supervisor(stream_ds)
        delete_stream_later.append(stream)
    print(f"stream       publish {result['publish_rows_s']:,.0f} rows/s "
          f"({rest.num_rows:,} rows, {result['calls']} PutRecords calls, {args.shards} shards); "
          f"last put -> queryable {result['queryable_s']:.1f} s")
    print(f"             supervisor submitted -> first rows queryable {result['cold']:.1f} s; "
          f"steady state put -> queryable {result['warm_s']:.1f} s (200 rows)")
    if args.unpacked_rows:
        one = rows.slice(0, min(args.unpacked_rows, n))
        one_stream = create_stream(args.shards)
        delete_stream_later.append(one_stream)
        pub1 = KinesisPublisher(KinesisOutConfig(stream=one_stream, endpoint_url=KINESIS,
                                                 pack_bytes=0))
        t0 = time.perf_counter()
        pub1.publish(one)
        dt = time.perf_counter() - t0
        print(f"             one row per record: {one.num_rows / dt:,.0f} rows/s "
              f"({one.num_rows:,} rows into an empty stream)")



def backfill_path(api: DruidAPI, args: argparse.Namespace, db: Path, tmp: Path,
                  want: tuple[int, int, int], created: list[str]) -> None:
    kinds = [k.strip() for k in args.staging.split(",") if k.strip()]
    bucket = ""
    if "s3" in kinds:
        s3 = boto3.client("s3", endpoint_url=S3, region_name="us-east-1", **CREDS)
        bucket = f"dredge-bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
    for run in range(args.repeat):
        for kind in kinds if run % 2 == 0 else kinds[::-1]:
            staging = f"s3://{bucket}/stage/" if kind == "s3" else f"local:{tmp / 'stage'}"
            backfill_once(api, db, staging, want, created)
    if bucket:
        left = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        print(f"             s3 objects left in {bucket}: {left}")


def backfill_once(api: DruidAPI, db: Path, staging: str, want: tuple[int, int, int],
                  created: list[str]) -> None:
    backfill_ds = f"dredge_bench_backfill_{uuid.uuid4().hex[:6]}"
    created.append(backfill_ds)
    with DuckDBSink(DuckDBConfig(path=str(db))) as store:
        b = DruidBackfill(store, DruidConfig(url=ROUTER, datasource=backfill_ds, staging=staging,
                                             s3_endpoint_url=S3))
        b.mark_stored()
        summary = b.push()
        b.close()
    check = sums(api, backfill_ds)
    tasks = sum(summary.task_seconds)
    print(f"backfill     {staging.split(':')[0]:5} {summary.rows / summary.seconds:,.0f} rows/s "
          f"({summary.rows:,} rows, {summary.bytes / 1e6:.1f} MB JSON, {summary.hours} hours, "
          f"{summary.statements} REPLACE task(s), {summary.seconds:.1f} s in all; totals "
          f"{'equal' if check == want else f'DIFFER {check} != {want}'})")
    print(f"             submit -> queryable (segments loaded): "
          f"{', '.join(f'{s:.1f} s' for s in summary.task_seconds)}; read + stage "
          f"{summary.seconds - tasks:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
