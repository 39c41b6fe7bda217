"""Helpers for the stream daemon's integration tests: sample lines, putting them into Kinesis
in the three envelopes, `dredge run` workers as processes, and totals computed independently
(plain Python over the lines put; DuckDB over the stores once the workers have stopped).
"""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import duckdb

from dredge.decode import encode_cloudwatch, encode_kpl
from dredge.generate import generate

REGION = "us-east-1"
OWNER = "123456789012"
BAD_LINE = b"2 123456789012 eni-0aaa bad-address 10.0.0.1 1 2 6 1 10 1795564800 1795564860 ACCEPT OK"


@dataclass
class Sample:
    lines: list[bytes]
    owners: Path
    networks: Path


def make_sample(out: Path, flows: int, seed: int) -> Sample:
    """v2 flow-log lines (headers stripped) and the index files they enrich against."""
    manifest = generate(out, flows=flows, seed=seed, hours=1, parquet_share=0.0, malformed_share=0.0)
    lines: list[bytes] = []
    for f in manifest["file_list"]:
        if f["kind"] == "text" and f["format"] == "v2" and f["role"] == "hourly":
            text = gzip.decompress((out / f["path"]).read_bytes())
            lines.extend(text.splitlines()[1:])
    return Sample(lines, out / "owners.jsonl", out / "networks.csv")


@dataclass
class Totals:
    flows: int = 0
    bytes: int = 0
    packets: int = 0

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.flows, self.bytes, self.packets)


def line_totals(lines: Sequence[bytes]) -> Totals:
    """Data records (log-status OK) of v2 lines, by plain splitting: independent of Dredge."""
    t = Totals()
    for line in lines:
        f = line.split(b" ")
        if len(f) == 14 and f[13] == b"OK" and f[3] != b"bad-address":
            t.flows += 1
            t.packets += int(f[8])
            t.bytes += int(f[9])
    return t


@dataclass
class PutLog:
    """What was put: per record, its shard, sequence number and lines."""

    records: list[tuple[str, str, list[bytes]]] = field(default_factory=list)
    bad_lines: int = 0
    control_messages: int = 0

    def last_sequence(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for shard, seq, _ in self.records:
            if shard not in last or int(seq) > int(last[shard]):
                last[shard] = seq
        return last

    def lines(self) -> list[bytes]:
        return [line for _, _, lines in self.records for line in lines]


def kinesis(endpoint: str) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def dynamodb(endpoint: str) -> Any:
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def create_stream(client: Any, name: str, shards: int) -> None:
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})


def _cwl(lines: list[bytes], rng: random.Random) -> bytes:
    eni = lines[0].split(b" ")[2].decode()
    return encode_cloudwatch(lines, log_stream=f"{eni}-all", owner=OWNER, level=rng.choice((1, 6)))


def encode_mixed(lines: list[bytes], rng: random.Random, bad_every: int = 0
                 ) -> list[tuple[bytes, list[bytes]]]:
    """Chunk lines into Kinesis record payloads: CloudWatch Logs, plain, KPL aggregates.

    Returns (data, the lines it carries). ``bad_every``: a malformed plain line is added to
    about one plain record in that many (carried in the lines, dead-lettered by Dredge).
    """
    out: list[tuple[bytes, list[bytes]]] = []
    i = 0
    while i < len(lines):
        r = rng.random()
        if r < 0.4:
            chunk = lines[i:i + rng.randint(10, 60)]
            out.append((_cwl(chunk, rng), chunk))
        elif r < 0.7:
            chunk = lines[i:i + rng.randint(1, 30)]
            carried = list(chunk)
            if bad_every and rng.randrange(bad_every) == 0:
                carried.insert(rng.randint(0, len(carried)), BAD_LINE)
            out.append((b"\n".join(carried) + rng.choice((b"", b"\n")), carried))
        else:
            users: list[tuple[str, bytes]] = []
            carried = []
            j = i
            for _ in range(rng.randint(2, 8)):
                if j >= len(lines):
                    break
                part = lines[j:j + rng.randint(1, 15)]
                j += len(part)
                data = _cwl(part, rng) if rng.random() < 0.3 else b"\n".join(part)
                users.append((f"pk-{rng.randrange(1000)}", data))
                carried.extend(part)
            out.append((encode_kpl(users), carried))
            i = j
            continue
        i += len(chunk)
    return out


def put_payloads(client: Any, stream: str, payloads: list[tuple[bytes, list[bytes]]],
                 rng: random.Random, log: PutLog, hash_key: Callable[[], str] | None = None) -> None:
    """PutRecords in calls of <= 500 records; record shard and sequence of each."""
    for k in range(0, len(payloads), 400):
        part = payloads[k:k + 400]
        entries = []
        for data, _ in part:
            e: dict[str, Any] = {"Data": data, "PartitionKey": f"k{rng.randrange(1 << 30)}"}
            if hash_key is not None:
                e["ExplicitHashKey"] = hash_key()
            entries.append(e)
        resp = client.put_records(StreamName=stream, Records=entries)
        assert not resp.get("FailedRecordCount"), resp
        for (_, carried), r in zip(part, resp["Records"], strict=True):
            log.records.append((r["ShardId"], r["SequenceNumber"], carried))
            log.bad_lines += carried.count(BAD_LINE)


def put_control_message(client: Any, stream: str, log: PutLog) -> None:
    data = encode_cloudwatch([b"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."],
                             log_stream="", owner="CloudwatchLogs", message_type="CONTROL_MESSAGE")
    client.put_record(StreamName=stream, Data=data, PartitionKey="control")
    log.control_messages += 1


def lease_items(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def lease_checkpoints(client: Any, table: str) -> dict[str, str]:
    try:
        items = lease_items(client, table)
    except client.exceptions.ResourceNotFoundException:
        return {}
    return {i["leaseKey"]["S"]: i["checkpoint"]["S"] for i in items}


def caught_up(checkpoints: dict[str, str], last: dict[str, str]) -> bool:
    for shard, seq in last.items():
        cp = checkpoints.get(shard)
        if cp is None or not (cp == "SHARD_END" or (cp.isdigit() and int(cp) >= int(seq))):
            return False
    return True


def wait_for(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.25,
             alive: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def write_config(path: Path, *, stream: str, db: Path, sample: Sample | None = None,
                 worker_id: str = "", index: str | None = None, extra: str = "",
                 flush_interval_s: float = 0.5, holdback_s: float = 0.0,
                 sink_retry_max_s: float = 30.0, failover_s: float = 10.0,
                 stream_endpoint: str = "", metrics_port: int = 0) -> Path:
    """A `dredge run` config for one stream. ``[index]`` is ``index`` (keys and sub-tables)
    when given, else the sample's ownership and CIDR files; ``stream_endpoint`` is the input
    stream's endpoint (empty: AWS_ENDPOINT_URL, the moto server); ``extra`` is appended."""
    if index is None:
        assert sample is not None, "an [index] section or a sample"
        index = f'ownership = ["{sample.owners}"]\ncidrs = ["{sample.networks}"]'
    path.write_text(f"""
worker_id = "{worker_id}"
log_level = "info"

[[streams]]
name = "{stream}"
region = "{REGION}"
endpoint_url = "{stream_endpoint}"

[index]
{index}

[pipeline]
flush_interval_s = {flush_interval_s}
holdback_s = {holdback_s}
sink_retry_max_s = {sink_retry_max_s}

[kinesis]
idle_poll_interval_s = 0.2
list_shards_interval_s = 2.0
backoff_base_s = 0.05
backoff_max_s = 0.5

[lease]
table = "leases-{stream}"
failover_time_s = {failover_s}
renew_interval_s = {failover_s / 4}
take_interval_s = {failover_s / 4}

[sink.duckdb]
path = "{db}"
threads = 1

[dead_letter]
path = "{db.with_suffix('.deadletter.jsonl')}"

[metrics]
port = {metrics_port}
host = "127.0.0.1"
{extra}
""")
    return path


class Worker:
    """One `dredge run` process."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config = config
        self.log = log
        self._env = {**os.environ, **env, "CI": os.environ.get("CI", "")}
        self.proc: subprocess.Popen[bytes] | None = None

    def _started_count(self) -> int:
        return self.log.read_text(errors="replace").count("daemon_started") if self.log.exists() else 0

    def start(self) -> Worker:
        self._starts_before = self._started_count()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dredge.cli", "run", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=self._env)
        return self

    def wait_started(self, timeout: float = 120) -> Worker:
        """Until this process logged daemon_started (imports, index, lease table done)."""
        wait_for(lambda: self._started_count() > self._starts_before, timeout,
                 "the worker to start", alive=self.check_alive)
        return self

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"worker did not stop within {timeout}s:\n{self.tail()}") from None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def store_totals(db: Path) -> Totals:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT coalesce(sum(flows), 0), coalesce(sum(bytes), 0),"
                          " coalesce(sum(packets), 0) FROM flows").fetchone()
    finally:
        con.close()
    assert row is not None
    return Totals(int(row[0]), int(row[1]), int(row[2]))


def by_port(db: Path) -> dict[tuple[Any, ...], int]:
    """Flows by (protocol, service port): what the stream and a replay must agree on."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT protocol, port, sum(flows) FROM flows GROUP BY ALL").fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def grouped(db: Path) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT window_start, src_app, dst_app, action, sum(flows), sum(bytes), sum(packets)"
            " FROM flows GROUP BY ALL").fetchall()
    finally:
        con.close()
    return {tuple(r[:4]): (int(r[4]), int(r[5]), int(r[6])) for r in rows}


def store_checkpoints(db: Path) -> dict[str, str]:
    """shard -> sequence stored in a worker's DuckDB (its ``checkpoints`` table)."""
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "checkpoints" not in tables:
            return {}
        return {str(s): str(q) for s, q in con.execute("SELECT shard_id, sequence FROM checkpoints").fetchall()}
    finally:
        con.close()


def lines_upto(log: PutLog, positions: dict[str, str]) -> list[bytes]:
    """Lines of the records at or before each shard's position (SHARD_END: all)."""
    out: list[bytes] = []
    for shard, seq, lines in log.records:
        cp = positions.get(shard)
        if cp is not None and (cp == "SHARD_END" or (cp.isdigit() and int(seq) <= int(cp))):
            out.extend(lines)
    return out
