"""The HTTP API's speed over the 24 h demo store, and the daemon's flush latency with and
without a dashboard refreshing every second.

    .venv/bin/python benchmarks/serve.py [--flows 1000000] [--repeat 20] [--work DIR]
                                         [--phase-s 20] [--rate 2000]

1. store     `dredge generate --flows N` (24 h) + `dredge replay` into DuckDB (kept in --work
             and reused when it is there)
2. api       `dredge serve --db` as a process with its answer cache off ([serve]
             query_cache = 0); each page's queries (as the dashboards send them: Overview,
             Dependencies, Cost, plus /api/meta) run --repeat times one after the other;
             p50/p99 in ms per query; then p50 of the same with the cache on (a dashboard
             reloaded over an unchanged store)
3. flush     `dredge run` against a moto-server stream, its store a copy of the demo store;
             flow-log lines put at --rate lines/s (CloudWatch Logs envelopes) for --phase-s
             seconds with no client, then as long with a client sending the Overview page's
             queries every second to the daemon's own /api/query; flush latency p50/p99/mean of
             each phase from the daemon's dredge_sink_flush_seconds histogram (/metrics)

Prints numbers; no thresholds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from dredge.decode import encode_cloudwatch
from dredge.serve.ops import Buckets, quantile
from dredge.testing import MotoServer, free_port

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DAY = ("2026-11-25T00:00Z", "2026-11-26T00:00Z")

PAGES: dict[str, list[dict[str, Any]]] = {
    "overview": [
        {"kind": "timeseries", "interval": "5m"},
        {"kind": "timeseries", "by": "action", "interval": "5m"},
        {"kind": "timeseries", "by": "src_region", "interval": "5m"},
        {"kind": "timeseries", "by": "traffic_path", "interval": "5m"},
        {"kind": "timeseries", "by": "dst_app", "where": ["dst_app=unknown|internet"],
         "interval": "5m"},
    ],
    "dependencies": [
        {"kind": "top", "by": "src_app,dst_app", "limit": 200},
        {"kind": "top", "by": "src_app,dst_app", "limit": 200,
         "from": "2026-11-25T12:00Z", "to": "2026-11-26T00:00Z"},
        {"kind": "top", "by": "src_app,dst_app", "limit": 200,
         "from": "2026-11-25T00:00Z", "to": "2026-11-25T12:00Z"},
        {"kind": "timeseries", "by": "dst_app", "where": ["src_app=api"], "interval": "5m"},
        {"kind": "timeseries", "by": "src_app", "where": ["dst_app=api"], "interval": "5m"},
    ],
    "cost": [
        {"kind": "cross-az", "by": "src_app,dst_app", "limit": 50},
        {"kind": "cross-az", "by": "src_region,dst_region", "limit": 50},
        {"kind": "cross-az", "by": "src_az,dst_az", "limit": 50, "where": ["action=ACCEPT"]},
    ],
}


def build_store(work: Path, flows: int) -> Path:
    db = work / f"demo-{flows}.duckdb"
    if db.exists():
        print(f"store        {db} (reused)")
        return db
    sample = work / f"sample-{flows}"
    cli = [sys.executable, "-m", "dredge.cli", "--log-level", "error"]
    t0 = time.perf_counter()
    subprocess.run([*cli, "generate", str(sample), "--flows", str(flows)], check=True,
                   stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    subprocess.run([*cli, "replay", str(sample / "logs"), "--index", str(sample / "owners.jsonl"),
                    "--cidrs", str(sample / "networks.csv"), "--db", str(db), "--no-progress"],
                   stdout=subprocess.DEVNULL)  # exit 1: the generator's truncated files
    print(f"store        {db}: generate {t1 - t0:.1f} s, replay {time.perf_counter() - t1:.1f} s")
    return db


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:
        body: bytes = resp.read()
        return body


def query_url(base: str, params: dict[str, Any]) -> str:
    return f"{base}/api/query?{urllib.parse.urlencode(params, doseq=True)}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_queries(base: str, repeat: int) -> list[tuple[str, str, int, list[float]]]:
    """(page, query, rows, milliseconds per run) of every page's queries."""
    out = []
    for page, queries in [*PAGES.items(), ("meta", [{}])]:
        for params in queries:
            url = f"{base}/api/meta" if page == "meta" else query_url(base, params)
            times: list[float] = []
            rows = 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                body = get(url)
                times.append((time.perf_counter() - t0) * 1000)
                rows = len(json.loads(body).get("rows", []))
            label = "/api/meta" if page == "meta" else urllib.parse.unquote(url.split("?")[1])
            out.append((page, label, rows, times))
    return out


def serving(db: Path, log: Path, cache: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "DREDGE_SERVE__QUERY_CACHE": str(cache)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", "serve", "--db", str(db),
                                 "--port", "0"], stdout=out, stderr=subprocess.STDOUT, env=env)
    for _ in range(600):
        text = log.read_text()
        if "serving http://" in text:
            return proc, text.split("serving ")[1].split("/ ")[0]
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"dredge serve did not start: {log.read_text()}")


def bench_api(db: Path, repeat: int, work: Path) -> None:
    results = {}
    for cache in (0, 128):
        proc, base = serving(db, work / f"serve-{cache}.log", cache)
        try:
            results[cache] = run_queries(base, repeat if cache == 0 else max(3, repeat // 4))
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"\napi          dredge serve --db {db.name}: {repeat} runs each uncached, then cached; ms")
    print(f"{'page':<13}{'query':<78}{'rows':>6}{'p50':>9}{'p99':>9}{'cached':>9}")
    for (page, label, rows, times), (*_, cached) in zip(results[0], results[128], strict=True):
        print(f"{page:<13}{label[:76]:<78}{rows:>6}{pct(times, 0.5):>9.1f}"
              f"{pct(times, 0.99):>9.1f}{pct(cached, 0.5):>9.1f}")


def flush_buckets(port: int) -> tuple[Buckets, float, float]:
    """(cumulative buckets, count, sum) of the daemon's DuckDB flush histogram."""
    text = get(f"http://127.0.0.1:{port}/metrics").decode()
    buckets: Buckets = []
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("dredge_sink_flush_seconds_bucket{") and 'sink="duckdb"' in line:
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
        elif line.startswith('dredge_sink_flush_seconds_count{sink="duckdb"}'):
            count = float(line.rsplit(" ", 1)[1])
        elif line.startswith('dredge_sink_flush_seconds_sum{sink="duckdb"}'):
            total = float(line.rsplit(" ", 1)[1])
    return sorted(buckets), count, total


def demo_lines(db: Path, work: Path) -> list[bytes]:
    sample = work / db.stem.replace("demo-", "sample-")
    lines: list[bytes] = []
    for path in sorted((sample / "logs").rglob("*.log.gz")):
        try:
            text = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):
            continue  # the generator's truncated files
        first = text.split(b"\n", 1)[0]
        if first.startswith(b"version account-id interface-id srcaddr"):
            lines.extend(x for x in text.splitlines()[1:] if x.count(b" ") == 13)
        if len(lines) > 400_000:
            break
    return lines


def feeder(kin: Any, stream: str, lines: list[bytes], rate: float, stop: threading.Event) -> None:
    per_record, i = 50, 0
    while not stop.is_set():
        t0 = time.monotonic()
        n = int(rate / 2)  # every half second
        batch = [lines[(i + k) % len(lines)] for k in range(n)]
        i += n
        records = [{"Data": encode_cloudwatch(batch[j:j + per_record], log_stream="eni-bench-all",
                                              owner="123456789012"), "PartitionKey": f"k{i + j}"}
                   for j in range(0, len(batch), per_record)]
        kin.put_records(StreamName=stream, Records=records)
        stop.wait(max(0.0, 0.5 - (time.monotonic() - t0)))


def bench_flush(db: Path, work: Path, phase_s: float, rate: float) -> None:
    lines = demo_lines(db, work)
    sample = work / db.stem.replace("demo-", "sample-")
    store = work / "daemon.duckdb"
    shutil.copy(db, store)
    moto = MotoServer(work)
    moto.start()
    port = free_port()
    proc = None
    try:
        kin = boto3.client("kinesis", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
        kin.create_stream(StreamName="bench", ShardCount=2)
        kin.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.2})
        cfg = work / "dredge.toml"
        cfg.write_text(f"""
[[streams]]
name = "bench"
region = "{REGION}"
[index]
ownership = ["{sample / 'owners.jsonl'}"]
cidrs = ["{sample / 'networks.csv'}"]
[pipeline]
flush_interval_s = 1.0
[kinesis]
idle_poll_interval_s = 0.2
[lease]
table = "bench-leases"
[sink.duckdb]
path = "{store}"
[dead_letter]
path = "{work / 'daemon.deadletter.jsonl'}"
[metrics]
port = {port}
""")
        env = {**os.environ, **CREDS_ENV, "AWS_ENDPOINT_URL": moto.endpoint}
        with open(work / "daemon.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", "run", "--config", str(cfg)],
                                    stdout=out, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        for _ in range(1200):
            try:
                if json.loads(get(base + "/api/meta"))["daemon"]:
                    break
            except OSError:
                time.sleep(0.1)
        stop = threading.Event()
        feed = threading.Thread(target=feeder, args=(kin, "bench", lines, rate, stop), daemon=True)
        feed.start()
        time.sleep(5)  # caught up with the feed
        print(f"\nflush        dredge run, store = the demo store, {rate:,.0f} lines/s put, "
              f"flush_interval_s 1, {phase_s:g} s per phase")
        print(f"{'phase':<34}{'flushes':>8}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'queries':>9}")
        for phase in ("no client", "dashboard every 1 s"):
            b0, c0, s0 = flush_buckets(port)
            t_end = time.monotonic() + phase_s
            answered: list[float] = []
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                if phase != "no client":
                    for params in PAGES["overview"]:
                        q0 = time.perf_counter()
                        get(query_url(base, params))
                        answered.append(time.perf_counter() - q0)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
            b1, c1, s1 = flush_buckets(port)
            delta = [(le, c - o) for (le, c), (_, o) in zip(b1, b0, strict=True)]
            n = c1 - c0
            p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
            extra = f"{len(answered):>9}" if answered else f"{'-':>9}"
            print(f"{phase:<34}{n:>8.0f}{(p50 or 0) * 1000:>9.1f}{(p99 or 0) * 1000:>9.1f}"
                  f"{(s1 - s0) / max(n, 1) * 1000:>9.1f}{extra}")
            if answered:
                print(f"{'  its queries (ms)':<34}{'':>8}{statistics.median(answered) * 1000:>9.1f}"
                      f"{pct(answered, 0.99) * 1000:>9.1f}")
        stop.set()
        feed.join(5)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
        moto.stop()


CREDS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": REGION}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--work", default="/tmp/dredge-serve-bench")
    ap.add_argument("--phase-s", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="flow-log lines put per second")
    ap.add_argument("--skip-flush", action="store_true", help="only the API part")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    db = build_store(work, args.flows)
    bench_api(db, args.repeat, work)
    if not args.skip_flush:
        bench_flush(db, work, args.phase_s, args.rate)


if __name__ == "__main__":
    main()
