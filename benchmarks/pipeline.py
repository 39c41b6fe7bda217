"""The stream daemon's pipeline without the emulator: recorded GetRecords responses, from memory,
through the daemon's real path, next to baselines measured in the same run.

    python benchmarks/pipeline.py [--flows 1000000] [--sizes 2000000,20000000] [--kinds cwl,plain,kpl]

Records (synthesised once with `dredge generate`, v2 lines of 1 hour, kept in --data):
  cwl     CloudWatch Logs subscription envelopes (gzip JSON), 500 log events each, one log
          stream (ENI) per envelope, as a subscription filter writes them
  plain   plain flow-log lines, 100 per record
  kpl     KPL aggregates (~50 KB, the KPL's default AggregationMaxSize), one line per user record
The path is the daemon's (dredge/sources/kinesis/reader.py ShardReader -> StreamBatcher: decode,
parse, enrich against a live IndexManager holding the ownership history and CIDR map,
roll up, DuckDB flush of rows + checkpoints every second -> the shard owner's checkpoint).
Only the HTTP client is replaced: `MemoryKinesis` answers get_shard_iterator / get_records
with the recorded records (at most 10 MiB or `Limit` records per response, as Kinesis does;
the recorded set is served again with new sequence numbers until a run's size is reached).
The lease table (DynamoDB) is replaced by an owner that keeps the checkpoints in memory.
The reader's per-shard quota pacing (5 calls/s, 2 MiB/s) is lifted: this measures CPU.

Each run is its own process. Per run it prints flows/s per core = flows stored / CPU seconds
of the process while it ran (every thread counted; set-up excluded), wall time, peak RSS,
and a per-stage profile (thread CPU time inside each stage; "other" = the reader, the asyncio
loop, the queue, the threads). Baselines in the same run (each in a process of its own, so a
run's peak RSS is the daemon path's): the bare decode of the same
records (decode_records alone; and on its reference path: orjson for every CloudWatch Logs
envelope, the Python KPL parser), a bare GetRecords loop over the in-memory client, and
`dredge replay --workers 1` of the same lines from gzip files (CPU of that whole process,
start-up included, and its own hot-loop rate).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STREAM = "bench"
KINDS = ("cwl", "plain", "kpl")
LINES_PER = {"cwl": 500, "plain": 100}
KPL_AGGREGATE_BYTES = 51_200  # the KPL's default AggregationMaxSize
RESPONSE_BYTES = 10 * 1024 * 1024  # GetRecords returns at most 10 MiB
GOAL = 500_000  # flows/s per core for CloudWatch Logs envelopes (issue 15, goal 4)


# -- the recorded data -------------------------------------------------------------------------

def sample(data: Path, flows: int) -> list[bytes]:
    """The v2 lines of a generated hour (regenerated when older than 12 h: the live index keeps
    24 h of history, so the flows must be recent)."""
    from dredge.generate import generate

    manifest = data / "manifest.json"
    fresh = False
    if manifest.exists():
        m = json.loads(manifest.read_text())
        fresh = m.get("args", {}).get("flows") == flows and m["args"]["start"] > time.time() - 12 * 3600
    if not fresh:
        generate(data, flows=flows, seed=17, hours=1, start=int(time.time()) // 3600 * 3600 - 3600,
                 parquet_share=0.0, malformed_share=0.0005)
    lines: list[bytes] = []
    for f in v2_files(data):
        lines.extend(gzip.decompress(f.read_bytes()).splitlines()[1:])
    return lines


def v2_files(data: Path) -> list[Path]:
    m = json.loads((data / "manifest.json").read_text())
    return [data / f["path"] for f in m["file_list"]
            if f["kind"] == "text" and f["format"] == "v2" and f["role"] == "hourly"]


def records_of(kind: str, lines: list[bytes]) -> list[bytes]:
    """The Kinesis records a producer of ``kind`` would write for these lines."""
    from dredge.decode import encode_cloudwatch, encode_kpl

    if kind == "cwl":
        # CloudWatch Logs sends one log stream (ENI) per envelope; few ENIs of a sample carry
        # 500 lines an hour, so lines are ordered by ENI and cut every 500: an envelope takes
        # the log stream of its first line (the pipeline does not check the lines' ENIs).
        n = LINES_PER["cwl"]
        by_eni = sorted(lines, key=lambda line: line.split(b" ", 3)[2:3])
        return [encode_cloudwatch(by_eni[i:i + n], owner="123456789012",
                                  log_stream=eni_of(by_eni[i]) + "-all")
                for i in range(0, len(by_eni), n)]
    if kind == "plain":
        n = LINES_PER["plain"]
        return [b"\n".join(lines[i:i + n]) for i in range(0, len(lines), n)]
    out, run, size = [], [], 0
    for i, line in enumerate(lines):
        if size + len(line) + 8 > KPL_AGGREGATE_BYTES and run:
            out.append(encode_kpl(run))
            run, size = [], 0
        run.append((f"pk{i % 64}", line))
        size += len(line) + 8
    if run:
        out.append(encode_kpl(run))
    return out


def eni_of(line: bytes) -> str:
    parts = line.split(b" ", 3)
    return parts[2].decode("ascii", "replace") if len(parts) > 2 else "eni-0"


def recorded(data: Path, kind: str, lines: list[bytes] | None = None) -> list[bytes]:
    """Records of ``kind``, cached in ``data`` as length-prefixed blobs (made from ``lines``)."""
    path = data / f"records-{kind}.bin"
    if path.exists() and path.stat().st_mtime >= (data / "manifest.json").stat().st_mtime:
        blob, out, pos = path.read_bytes(), [], 0
        while pos < len(blob):
            n = int.from_bytes(blob[pos:pos + 4], "little")
            out.append(blob[pos + 4:pos + 4 + n])
            pos += 4 + n
        return out
    if lines is None:
        raise SystemExit(f"{path} is missing or stale")
    recs = records_of(kind, lines)
    path.write_bytes(b"".join(len(r).to_bytes(4, "little") + r for r in recs))
    return recs


# -- the in-memory Kinesis client --------------------------------------------------------------

class MemoryKinesis:
    """The two calls a ShardReader makes, answered from memory like Kinesis answers them.

    Shard ``k`` holds every ``shards``-th recorded record, served ``cycles`` times (new
    sequence numbers each time); the shard is closed: after its last record the answer has
    no NextShardIterator.
    """

    def __init__(self, records: list[bytes], shards: int, total_records: int) -> None:
        self.shards = {f"shardId-{k:012d}": records[k::shards] for k in range(shards)}
        self.total = {sid: total_records // shards + (k < total_records % shards)
                      for k, sid in enumerate(self.shards)}
        self.calls = 0

    async def get_shard_iterator(self, *, StreamName: str, ShardId: str,
                                 ShardIteratorType: str, **_: Any) -> dict[str, Any]:
        if ShardIteratorType != "TRIM_HORIZON":
            raise ValueError(f"the benchmark starts at TRIM_HORIZON, not {ShardIteratorType}")
        return {"ShardIterator": f"{ShardId}|0"}

    async def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls += 1
        shard, at = ShardIterator.split("|")
        pos, recs, end = int(at), self.shards[shard], self.total[shard]
        out: list[dict[str, Any]] = []
        size = 0
        while pos < end and len(out) < Limit:
            data = recs[pos % len(recs)]
            if out and size + len(data) > RESPONSE_BYTES:
                break
            size += len(data)
            out.append({"SequenceNumber": str(49 * 10**54 + pos), "Data": data,
                        "PartitionKey": "k"})
            pos += 1
        nxt = f"{shard}|{pos}" if pos < end else None  # a closed shard read to its end
        return {"Records": out, "NextShardIterator": nxt, "MillisBehindLatest": 0}


class Owner:
    """The shard owner (the consumer's role toward the batcher) without a lease table."""

    def __init__(self, shards: int) -> None:
        self.left = shards
        self.done = asyncio.Event()
        self.checkpoints = 0

    def is_current(self, shard_id: str, epoch: int) -> bool:
        return True

    async def commit_checkpoint(self, shard_id: str, epoch: int, position: Any) -> None:
        self.checkpoints += 1
        if position.kind == "SHARD_END":
            self.left -= 1
            if not self.left:
                self.done.set()


# -- per-stage timers --------------------------------------------------------------------------

STAGES: dict[str, float] = defaultdict(float)


def timed(owner: Any, name: str, stage: str) -> None:
    """Wrap ``owner.name`` so the calling thread's CPU time inside it adds to ``stage``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            STAGES[stage] += time.thread_time() - t0

    setattr(owner, name, wrapper)


def instrument() -> None:
    from dredge import pipeline
    from dredge.batcher import batches
    from dredge.enrich.rollup import Rollup
    from dredge.flowlog.columns import FlowColumns
    from dredge.flowlog.parser import FlowParser
    from dredge.sinks.duckdb import DuckDBSink

    timed(batches, "decode_records", "decode")
    timed(FlowParser, "parse", "parse")
    timed(FlowColumns, "from_parsed", "columns")
    timed(pipeline, "enrich", "enrich")
    timed(Rollup, "add", "rollup")
    timed(Rollup, "to_rolled", "flush")
    timed(DuckDBSink, "store_batch", "flush")


# -- one run (a child process) -----------------------------------------------------------------

def child(args: argparse.Namespace) -> None:
    data = Path(args.data)
    recs = recorded(data, args.kind)  # made by the parent: the lines are not held here
    per_record = args.lines / len(recs)
    total_records = max(1, round(args.size / per_record))
    result: dict[str, Any] = {"kind": args.kind, "records": total_records,
                              "lines": round(total_records * per_record),
                              "record_bytes": sum(map(len, recs)) / len(recs)}
    if args.baselines:  # in a process of their own: the daemon's peak RSS is its own
        result.update(baselines(recs, args.shards))
        print(json.dumps(result))
        return
    instrument()
    result.update(asyncio.run(daemon_path(args, data, recs, total_records)))
    print(json.dumps(result))


def baselines(recs: list[bytes], shards: int) -> dict[str, float]:
    """CPU seconds of a bare GetRecords loop and of decode_records alone, on one pass of the
    recorded records, batched as the reader gets them."""
    from dredge.decode import decode_records

    client = MemoryKinesis(recs, shards, len(recs))

    async def read_all() -> list[list[bytes]]:
        got = []
        for sid in client.shards:
            it: str | None = (await client.get_shard_iterator(
                StreamName=STREAM, ShardId=sid, ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
            while it is not None:
                resp = await client.get_records(ShardIterator=it, Limit=10000)
                if resp["Records"]:
                    got.append([r["Data"] for r in resp["Records"]])
                it = resp["NextShardIterator"]
        return got

    t0 = time.process_time()
    batches = asyncio.run(read_all())
    t_read = time.process_time() - t0
    decode_records(recs[:2])  # load the compiled kernels first
    t0 = time.process_time()
    lines = sum(len(decode_records(b)) for b in batches)
    t_decode = time.process_time() - t0
    t0 = time.process_time()
    for b in batches:
        decode_records(b, fast=False)
    return {"bare_read_cpu": t_read, "bare_decode_cpu": t_decode, "bare_lines": lines,
            "reference_decode_cpu": time.process_time() - t0}


async def daemon_path(args: argparse.Namespace, data: Path, recs: list[bytes],
                      total_records: int) -> dict[str, Any]:
    from dredge.batcher import StreamBatcher
    from dredge.decode import DecodeConfig
    from dredge.flowlog.fields import DEFAULT_FORMAT
    from dredge.index.providers.config import IndexConfig
    from dredge.pipeline import PipelineConfig
    from dredge.sinks.deadletter import DeadLetters
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
    from dredge.snapshots import index_from_config
    from dredge.sources.kinesis.config import KinesisConfig
    from dredge.sources.kinesis.discovery import Shard, ShardCatalog
    from dredge.sources.kinesis.reader import ShardReader
    from dredge.sources.kinesis.shards import TRIM_HORIZON, Position, ShardInfo

    work = Path(tempfile.mkdtemp(prefix="dredge-pipeline-"))
    index = IndexConfig(ownership=[str(data / "owners.jsonl")], cidrs=[str(data / "networks.csv")],
                        state_path=str(work / "index.state"))
    snapshots, manager = await index_from_config(index)
    assert manager is not None  # the live index
    await manager.start()
    intervals = snapshots.current().intervals
    store = DuckDBSink(DuckDBConfig(path=str(work / "bench.duckdb"), memory_limit=args.duckdb_memory))
    store.open()
    dead = DeadLetters(work / "dead.jsonl")
    batcher = StreamBatcher(store, dead, snapshots, DecodeConfig(), PipelineConfig())
    owner = Owner(args.shards)
    batcher.register(STREAM, DEFAULT_FORMAT, owner)
    client = MemoryKinesis(recs, args.shards, total_records)
    catalog = ShardCatalog()
    catalog.update([Shard(ShardInfo(sid, (), None, None), str(49 * 10**54 + client.total[sid]))
                    for sid in client.shards])
    kinesis = KinesisConfig(max_calls_per_s=1e6, max_bytes_per_s=1 << 60, idle_poll_interval_s=0.01)
    readers = [ShardReader(client, STREAM, sid, 1, Position(TRIM_HORIZON), batcher.put, kinesis, catalog)
               for sid in client.shards]
    warm_up(recs[:8], snapshots)  # load the compiled kernels before the clock starts
    STAGES.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = asyncio.create_task(batcher.run())
    tasks = [asyncio.create_task(r.run()) for r in readers]
    await owner.done.wait()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await asyncio.gather(*tasks)
    await batcher.drain_and_stop()
    await run
    flows, rows = store.query("SELECT sum(flows), count(*) FROM flow_facts").to_pylist()[0].values()
    store.close()
    dead.close()
    await manager.stop()
    return {"flows": int(flows or 0), "rows": int(rows), "cpu": cpu, "wall": wall,
            "stages": dict(STAGES), "flushes": batcher.flushes, "calls": client.calls,
            "index": intervals, "dead_letters": sum(1 for _ in open(work / "dead.jsonl", "rb"))}


def warm_up(recs: list[bytes], snapshots: Any) -> None:
    from dredge.batcher.batches import enrich_batch, parse_batch
    from dredge.decode import DecodeConfig
    from dredge.flowlog.fields import DEFAULT_FORMAT
    from dredge.flowlog.parser import FlowParser
    from dredge.sources.kinesis.reader import ReadBatch

    batch = ReadBatch(STREAM, "warm-up", 0, recs, [str(i) for i in range(len(recs))])
    enrich_batch(parse_batch(batch, FlowParser(DEFAULT_FORMAT), DecodeConfig()), snapshots, 60, {})


# -- the parent: runs, baselines, report -------------------------------------------------------

def measured(cmd: list[str]) -> tuple[str, float, float]:
    """(stdout, CPU seconds, peak RSS MiB) of a child process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, ru = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd[:8])} failed with status {status}")
    return out, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def replay_baseline(data: Path, size: int) -> dict[str, float]:
    """`dredge replay --workers 1` of the recorded lines, repeated to ``size`` flows, one
    gzip file per repetition (as the stream serves them again)."""
    from zlib_ng import gzip_ng

    work = Path(tempfile.mkdtemp(prefix="dredge-pipeline-replay-"))
    text = b"".join(gzip.decompress(f.read_bytes()) for f in v2_files(data))
    header, _, body = text.partition(b"\n")
    body = body.replace(b"\n" + header + b"\n", b"\n")  # one header per file, not per hour
    per = body.count(b"\n")
    files = []
    for i in range(max(1, round(size / per))):
        files.append(work / f"part-{i:03d}.log.gz")
        # trailing blanks on the header make each file new to replay (it skips a file it stored)
        files[-1].write_bytes(gzip_ng.compress(header + b" " * i + b"\n" + body, compresslevel=1))
    cmd = [sys.executable, "-m", "dredge.cli", "replay", *map(str, files),
           "--index", str(data / "owners.jsonl"), "--cidrs", str(data / "networks.csv"),
           "--db", str(work / "replay.duckdb"), "--workers", "1", "--json", "--no-progress"]
    out, cpu, rss = measured(cmd)
    summary = json.loads(out)
    return {"cpu": cpu, "rss": rss, "flows": int(summary["flows"]), "loop_rate": float(summary["flows_per_s"])}


def report(kind: str, r: dict[str, Any], cpu: float, rss: float) -> Iterator[str]:
    rate = r["flows"] / r["cpu"]
    yield (f"{kind:<6} {r['flows']:>11,} flows  {rate:>11,.0f} flows/s/core  wall {r['wall']:6.2f} s"
           f"  cpu {r['cpu']:6.2f} s  peak RSS {rss:5.0f} MiB  ({r['records']:,} records,"
           f" {r['record_bytes'] / 1024:.1f} KiB each; {r['calls']} GetRecords, {r['flushes']} flushes,"
           f" {r['rows']:,} rows, {r['dead_letters']} dead letters)")
    if "bare_decode_cpu" in r:
        lines = r["bare_lines"]
        yield (f"       baselines: bare decode {lines / r['bare_decode_cpu']:,.0f} lines/s/core"
               f" (the reference path, orjson and the Python KPL parser: {lines / r['reference_decode_cpu']:,.0f}),"
               f" bare GetRecords loop {lines / max(r['bare_read_cpu'], 1e-9):,.0f} lines/s/core")
    stages = r["stages"]
    other = r["cpu"] - sum(stages.values())
    parts = [f"{k} {v / r['flows'] * 1e9:,.0f}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])]
    yield f"       ns/flow: {', '.join(parts)}, other {other / r['flows'] * 1e9:,.0f} (of {r['cpu'] / r['flows'] * 1e9:,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=600_000, help="distinct flows recorded")
    ap.add_argument("--sizes", default="2000000,20000000",
                    help="flows per run: every kind at the first, cwl at the others too (memory)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--data", default=str(ROOT / "bench-data" / "pipeline"))
    ap.add_argument("--no-replay", action="store_true", help="skip the dredge replay baseline")
    ap.add_argument("--duckdb-memory", default="", help="[sink.duckdb] memory_limit (default: DuckDB's)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--lines", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--baselines", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.kind = args.child
        child(args)
        return
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    lines = sample(data, args.flows)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    for kind in kinds:
        recorded(data, kind, lines)
    n_lines = len(lines)
    print(f"data     {n_lines:,} recorded v2 lines (1 hour, `dredge generate --flows {args.flows} --seed 17`),"
          f" {args.shards} shards; each run in its own process")
    del lines

    def run(kind: str, size: int, baselines: bool) -> None:
        cmd = [sys.executable, __file__, "--child", kind, "--size", str(size), "--flows", str(args.flows),
               "--shards", str(args.shards), "--data", str(data), "--lines", str(n_lines),
               "--duckdb-memory", args.duckdb_memory]
        out, _cpu, rss = measured(cmd)
        r = json.loads(out.strip().splitlines()[-1])
        if baselines:
            r.update(json.loads(measured([*cmd, "--baselines"])[0].strip().splitlines()[-1]))
        for line in report(kind, r, r["cpu"], rss):
            print(line, flush=True)
        if kind == "cwl" and size == sizes[0]:
            rate = r["flows"] / r["cpu"]
            verdict = "met" if rate >= GOAL else f"MISSED by {1 - rate / GOAL:.0%}"
            print(f"       goal {GOAL:,} flows/s/core for CloudWatch Logs envelopes: {verdict}"
                  f" (index: {r['index']:,} ownership intervals)")

    for kind in kinds:
        run(kind, sizes[0], baselines=True)
    for size in sizes[1:]:
        if "cwl" in kinds:
            run("cwl", size, baselines=False)
    if not args.no_replay:
        rb = replay_baseline(data, sizes[0])
        print(f"replay   dredge replay --workers 1 of the same lines from gzip files: "
              f"{rb['flows'] / rb['cpu']:,.0f} flows/s/core whole process (start-up included),"
              f" its loop {rb['loop_rate']:,.0f} flows/s; {rb['flows']:,} flows, peak RSS {rb['rss']:.0f} MiB")


if __name__ == "__main__":
    main()
