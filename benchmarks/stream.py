"""Stream throughput and latency: `dredge run` against a local Kinesis emulator (moto server),
next to a bare GetRecords loop over the same records in the same run (the emulator's ceiling).

    python benchmarks/stream.py [--flows 1200000] [--shards 4] [--latency-records 200]

1. ceiling   one asyncio GetRecords loop per shard (aiobotocore, Limit 10000, no pacing, no
             decoding): records and the flows they carry per second of wall time
2. daemon    the same records, already in the stream, read by a fresh `dredge run` process:
             flows / (time the lease checkpoints reach the last records - time the first
             shard reader started, from the daemon's log), with the CPU the daemon and moto
             used meanwhile and the daemon's own metrics (GetRecords calls, batch and flush
             seconds)
3. latency   with the daemon caught up and flush_interval_s = 1, records put one by one at a
             steady rate; latency = put -> the shard's lease checkpoint passes the record (the
             lease is checkpointed right after the DuckDB commit), polled every 20 ms
Prints numbers only; no thresholds. Records are CloudWatch Logs envelopes (50 lines each),
as a subscription filter writes them. moto enforces no read quota, and the bare loop is not
paced, so the daemon's per-shard quota (2 MiB/s, what AWS allows) is lifted too unless
--quota; --max-records and --flush-interval set the daemon's GetRecords Limit and flush.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from aiobotocore.session import get_session

from dredge.decode import encode_cloudwatch
from dredge.generate import generate
from dredge.testing import MotoServer, free_port

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def sample_lines(out: Path, flows: int) -> tuple[list[bytes], Path, Path]:
    manifest = generate(out, flows=flows, seed=17, hours=1, parquet_share=0.0, malformed_share=0.0)
    lines: list[bytes] = []
    for f in manifest["file_list"]:
        if f["kind"] == "text" and f["format"] == "v2" and f["role"] == "hourly":
            lines.extend(gzip.decompress((out / f["path"]).read_bytes()).splitlines()[1:])
    return lines, out / "owners.jsonl", out / "networks.csv"


def put_all(kin: Any, stream: str, lines: list[bytes], per_record: int = 50) -> dict[str, str]:
    last: dict[str, str] = {}
    payloads = [lines[i:i + per_record] for i in range(0, len(lines), per_record)]
    for k in range(0, len(payloads), 400):
        entries = [{"Data": encode_cloudwatch(p, log_stream=p[0].split(b" ")[2].decode() + "-all",
                                              owner="123456789012"),
                    "PartitionKey": f"k{k + i}"} for i, p in enumerate(payloads[k:k + 400])]
        for r in kin.put_records(StreamName=stream, Records=entries)["Records"]:
            last[r["ShardId"]] = r["SequenceNumber"]
    return last


async def ceiling(endpoint: str, stream: str, shards: list[str]) -> tuple[int, int, float]:
    """(records, bytes, seconds) of reading every shard to its end, all shards at once."""
    async with get_session().create_client("kinesis", region_name=REGION, endpoint_url=endpoint,
                                           **CREDS) as client:
        async def one(shard: str) -> tuple[int, int]:
            it = (await client.get_shard_iterator(StreamName=stream, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
            n = b = 0
            while True:
                resp = await client.get_records(ShardIterator=it, Limit=10000)
                recs = resp["Records"]
                if not recs:
                    return n, b
                n += len(recs)
                b += sum(len(r["Data"]) for r in recs)
                it = resp["NextShardIterator"]

        t0 = time.perf_counter()
        got = await asyncio.gather(*(one(s) for s in shards))
        return sum(g[0] for g in got), sum(g[1] for g in got), time.perf_counter() - t0


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def checkpoints(ddb: Any, table: str) -> dict[str, str]:
    try:
        items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    except ddb.exceptions.ResourceNotFoundException:
        return {}
    return {i["leaseKey"]["S"]: i["checkpoint"]["S"] for i in items}


def passed(cp: str | None, seq: str) -> bool:
    return cp is not None and (cp == "SHARD_END" or (cp.isdigit() and int(cp) >= int(seq)))


def metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # enough that the daemon's flush interval (1 s: its last checkpoint waits for the next
    # flush) is a small part of the run; at 200,000 the whole ceiling takes ~0.5 s
    ap.add_argument("--flows", type=int, default=1_200_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--latency-records", type=int, default=200)
    ap.add_argument("--latency-rate", type=float, default=20.0, help="records put per second")
    ap.add_argument("--max-records", type=int, default=10000, help="[kinesis] max_records (GetRecords Limit)")
    ap.add_argument("--flush-interval", type=float, default=1.0, help="[pipeline] flush_interval_s")
    ap.add_argument("--quota", action="store_true",
                    help="keep the reader's per-shard read quota (2 MiB/s) that AWS enforces and moto does not")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dredge-stream-bench-"))
    lines, owners, networks = sample_lines(work / "sample", args.flows)
    flows = sum(1 for x in lines if x.endswith(b" OK"))
    server = MotoServer(work)
    server.start()
    try:
        kin = boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint, **CREDS)
        ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=server.endpoint, **CREDS)
        stream = "bench"
        kin.create_stream(StreamName=stream, ShardCount=args.shards)
        kin.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
        t0 = time.perf_counter()
        last = put_all(kin, stream, lines)
        put_s = time.perf_counter() - t0
        shards = sorted(s["ShardId"] for s in kin.list_shards(StreamName=stream)["Shards"])
        moto_pid = server._proc.pid if server._proc is not None else os.getpid()
        moto0, own0 = cpu_of(moto_pid), time.process_time()
        n_rec, n_bytes, ceil_s = asyncio.run(ceiling(server.endpoint, stream, shards))
        moto_ceil, own_ceil = cpu_of(moto_pid) - moto0, time.process_time() - own0
        print(f"data        {len(lines):,} lines ({flows:,} flows) in {n_rec:,} CloudWatch Logs records,"
              f" {n_bytes / 1e6:.1f} MB on {args.shards} shards (put in {put_s:.1f} s)")
        print(f"ceiling     bare get_records loop: {n_rec / ceil_s:,.0f} records/s,"
              f" {flows / ceil_s:,.0f} flows/s ({ceil_s:.2f} s; CPU: moto {moto_ceil:.2f} s, the loop"
              f" {own_ceil:.2f} s)")

        port = free_port()
        table = f"bench-leases-{stream}"
        cfg = work / "dredge.toml"
        cfg.write_text(f"""
worker_id = "bench"
log_level = "info"
[[streams]]
name = "{stream}"
region = "{REGION}"
[index]
ownership = ["{owners}"]
cidrs = ["{networks}"]
[pipeline]
flush_interval_s = {args.flush_interval}
[kinesis]
idle_poll_interval_s = 0.2
max_records = {args.max_records}
{"" if args.quota else "max_bytes_per_s = 1099511627776  # moto has no read quota; the bare loop is not paced"}
[lease]
table = "bench-leases"
[sink.duckdb]
path = "{work / 'bench.duckdb'}"
[dead_letter]
path = "{work / 'dead.jsonl'}"
[metrics]
port = {port}
host = "127.0.0.1"
""")
        env = {**os.environ, **server.env()}
        proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", "run", "--config", str(cfg)],
                                env=env, stderr=subprocess.PIPE)
        started: list[float] = []  # when the first shard reader started, CPU of moto and daemon then
        reading = threading.Event()

        def watch() -> None:  # the daemon's log, kept in daemon.log; the first reader's start
            assert proc.stderr is not None
            with open(work / "daemon.log", "wb") as log:
                for line in proc.stderr:
                    log.write(line)
                    if not reading.is_set() and b"shard_reader_started" in line:
                        started.extend([time.perf_counter(), cpu_of(moto_pid), cpu_of(proc.pid)])
                        reading.set()

        threading.Thread(target=watch, daemon=True).start()
        try:
            while not reading.wait(0.05):
                if proc.poll() is not None:
                    raise SystemExit(f"daemon exited: {(work / 'daemon.log').read_text()[-2000:]}")
            t_first, moto0, daemon0 = started
            # Scanning the lease table loads moto, which serves the daemon too: first wait (on
            # the daemon's own metrics) until every record is read, then poll the checkpoints.
            while metric(port, "dredge_kinesis_records_read_total") < n_rec:
                time.sleep(0.1)
            while not all(passed(checkpoints(ddb, table).get(s), q) for s, q in last.items()):
                time.sleep(0.02)
            daemon_s = time.perf_counter() - t_first
            moto_d, daemon_cpu = cpu_of(moto_pid) - moto0, cpu_of(proc.pid) - daemon0
            ratio = ceil_s / daemon_s
            print(f"daemon      dredge run: {flows / daemon_s:,.0f} flows/s ({daemon_s:.2f} s from the first"
                  f" shard reader's start to the last checkpoint; {ratio:.2f}x the ceiling"
                  f"{'' if ratio >= 0.8 else f', goal 0.8x missed by {1 - ratio / 0.8:.0%}'})")
            print(f"            max_records {args.max_records}, flush_interval_s {args.flush_interval:g},"
                  f" read quota {'on (2 MiB/s per shard)' if args.quota else 'lifted (moto has none)'}")
            calls = metric(port, "dredge_kinesis_get_records_total")
            batches = metric(port, "dredge_stream_batch_seconds_count")
            print(f"            where the time went: {calls:.0f} GetRecords calls, {batches:.0f} batches"
                  f" decoded+parsed+enriched in {metric(port, 'dredge_stream_batch_seconds_sum'):.2f} s,"
                  f" {metric(port, 'dredge_sink_flush_seconds_count'):.0f} flushes in"
                  f" {metric(port, 'dredge_sink_flush_seconds_sum'):.2f} s; CPU in the window: daemon"
                  f" {daemon_cpu:.2f} s ({flows / max(daemon_cpu, 1e-9):,.0f} flows/s/core), moto {moto_d:.2f} s")

            if args.latency_records >= 2:  # else skipped
                # Latency at a 1 s flush interval.
                lat: list[float] = []
                pending: list[tuple[str, str, float]] = []
                lock = threading.Lock()
                done = threading.Event()

                def poll() -> None:
                    while not done.is_set() or pending:
                        cps = checkpoints(ddb, table)
                        now = time.perf_counter()
                        with lock:
                            for item in list(pending):
                                if passed(cps.get(item[0]), item[1]):
                                    lat.append(now - item[2])
                                    pending.remove(item)
                        time.sleep(0.02)

                poller = threading.Thread(target=poll, daemon=True)
                poller.start()
                step = 1.0 / args.latency_rate
                for i in range(args.latency_records):
                    chunk = lines[(i * 20) % len(lines):(i * 20) % len(lines) + 20]
                    data = encode_cloudwatch(chunk, log_stream="eni-0bench-all", owner="123456789012")
                    t = time.perf_counter()
                    r = kin.put_record(StreamName=stream, Data=data, PartitionKey=f"lat{i}")
                    with lock:
                        pending.append((r["ShardId"], r["SequenceNumber"], t))
                    time.sleep(max(0.0, step - (time.perf_counter() - t)))
                done.set()
                poller.join(60)
                lat.sort()
                p = statistics.quantiles(lat, n=100)
                print(f"latency     put -> stored (lease checkpointed), flush_interval_s=1:"
                      f" p50 {p[49] * 1000:.0f} ms, p99 {p[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
                      f" ({len(lat)} records at {args.latency_rate:g}/s)")
        finally:
            proc.terminate()
            proc.wait(60)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
