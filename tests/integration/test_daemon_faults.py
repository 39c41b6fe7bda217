"""Faults the way Kinesis returns them, injected by a loopback proxy in front of moto:
throttling (ProvisionedThroughputExceeded, KMS), expired iterators, 500s, a checkpoint
GetShardIterator refuses (trimmed), connections reset before any answer. Recovered, counted
in metrics, nothing lost; a KPL aggregate resumed mid-way (AT_SEQUENCE_NUMBER +
sub-sequence) is not read twice; AT_TIMESTAMP starts where it should; a role_arn stream is
read with the assumed role's credentials. Readers use the daemon's own client factory.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dredge.batcher import parse_batch
from dredge.decode import DecodeConfig, encode_kpl
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.flowlog.parser import FlowParser
from dredge.sources.kinesis.clients import kinesis_client
from dredge.sources.kinesis.config import KinesisConfig, StreamConfig
from dredge.sources.kinesis.discovery import ShardCatalog
from dredge.sources.kinesis.metrics import reader_events_total
from dredge.sources.kinesis.reader import ReadBatch, ShardReader
from dredge.sources.kinesis.shards import AT_TIMESTAMP, SEQUENCE, TRIM_HORIZON, Position
from dredge.testing import MotoServer, free_port
from tests.integration.faults import DROP, FaultProxy
from tests.integration.streams import (
    REGION,
    PutLog,
    Sample,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    lease_checkpoints,
    line_totals,
    put_payloads,
    store_totals,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PTE = "ProvisionedThroughputExceededException"
KMS = "KMSThrottlingException"
EXPIRED = "ExpiredIteratorException"
INTERNAL = "InternalFailure"


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r'^dredge_kinesis_reader_events_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[labels["event"]] = out.get(labels["event"], 0.0) + float(m.group(2))
    return out


def test_throttling_and_expired_iterators_recovered_counted_no_loss(
        moto: MotoServer, sample: Sample, tmp_path: Path) -> None:
    stream = f"faults-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 4)
    rng = random.Random(4)
    log = PutLog()
    put_payloads(kin, stream, encode_mixed(sample.lines, rng), rng, log)
    # A fixed schedule: every other GetRecords call fails, cycling through the kinds, until
    # each kind was injected TARGET times; every 3rd GetShardIterator is throttled (3 times).
    cycle = [(400, PTE), None, (400, KMS), None, (400, EXPIRED), None, (500, INTERNAL), None]
    calls = {"GetRecords": 0, "GetShardIterator": 0}
    target = 5

    def decide(target_op: str, body: dict[str, Any]) -> tuple[int, str] | None:
        if target_op == "GetRecords":
            fault = cycle[calls["GetRecords"] % len(cycle)]
            calls["GetRecords"] += 1
            if fault is not None and proxy.count("GetRecords", fault[1]) < target:
                return fault
        if target_op == "GetShardIterator":
            calls["GetShardIterator"] += 1
            if calls["GetShardIterator"] % 3 == 0 and proxy.count("GetShardIterator", PTE) < 3:
                return 400, PTE
        return None

    port = free_port()
    with FaultProxy(moto.endpoint, decide) as proxy:
        cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=tmp_path / "w.duckdb",
                           sample=sample, worker_id="faulty", metrics_port=port,
                           stream_endpoint=proxy.endpoint)
        worker = Worker(cfg, moto.env(), tmp_path / "w.log").start()
        try:
            last = log.last_sequence()
            wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"), last),
                     150, "checkpoints to reach the last records put", alive=worker.check_alive)
            wait_for(lambda: all(proxy.count("GetRecords", code) == target
                                 for code in (PTE, KMS, EXPIRED, INTERNAL)), 60,
                     "every kind of fault to be injected")
            want = {
                "throttled": proxy.count("GetRecords", PTE) + proxy.count("GetShardIterator", PTE),
                "kms_throttled": proxy.count("GetRecords", KMS),
                "expired_iterator": proxy.count("GetRecords", EXPIRED),
                "server_error": proxy.count("GetRecords", INTERNAL),
            }
            # every injected fault was seen and counted by the daemon
            wait_for(lambda: all(scrape(port).get(k, 0) == v for k, v in want.items()), 20,
                     f"metrics to count {want}")
        finally:
            rc = worker.terminate()
    assert rc == 0, worker.tail()
    assert want == {"throttled": target + proxy.count("GetShardIterator", PTE),
                    "kms_throttled": target, "expired_iterator": target, "server_error": target}
    assert store_totals(tmp_path / "w.duckdb").as_tuple() == line_totals(log.lines()).as_tuple()


@pytest.fixture
def aws_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and the STS endpoint for the daemon's own client factory in this process."""
    for name, value in moto.env().items():
        if name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto.endpoint)


async def _read(endpoint: str, stream: str, shard: str, start: Position, want_records: int,
                role_arn: str = "") -> list[ReadBatch]:
    """Read with the daemon's own Kinesis client (no SDK retries; role assumed if given)."""
    got: list[ReadBatch] = []

    async def deliver(batch: ReadBatch) -> None:
        got.append(batch)

    cfg = KinesisConfig(idle_poll_interval_s=0.05, backoff_base_s=0.01, backoff_max_s=0.05)
    source = StreamConfig(name=stream, region=REGION, endpoint_url=endpoint, role_arn=role_arn)
    async with kinesis_client(source, cfg) as client:
        reader = ShardReader(client, stream, shard, 1, start, deliver, cfg, ShardCatalog())
        task = asyncio.create_task(reader.run())
        try:
            async with asyncio.timeout(60):
                while sum(len(b.data) for b in got) < want_records:
                    await asyncio.sleep(0.05)
                    if task.done():
                        task.result()
        finally:
            task.cancel()
    return got


def test_trimmed_checkpoint_falls_back_to_trim_horizon(moto: MotoServer, aws_env: None) -> None:
    stream = f"trim-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 1)
    seqs = [kin.put_record(StreamName=stream, Data=f"line {i}".encode(), PartitionKey="p")["SequenceNumber"]
            for i in range(7)]
    gone = "4242424242"  # a checkpoint Kinesis no longer accepts

    def decide(target: str, body: dict[str, Any]) -> tuple[int, str] | None:
        if target == "GetShardIterator" and body.get("StartingSequenceNumber") == gone:
            return 400, "InvalidArgumentException"
        return None

    before = reader_events_total.labels(stream, "trimmed_checkpoint").value
    with FaultProxy(moto.endpoint, decide) as proxy:
        got = asyncio.run(_read(proxy.endpoint, stream, "shardId-000000000000",
                                Position(SEQUENCE, gone, 0), len(seqs)))
        assert proxy.count("GetShardIterator", "InvalidArgumentException") == 1
    assert [s for b in got for s in b.sequences] == seqs  # everything left, from the horizon
    assert reader_events_total.labels(stream, "trimmed_checkpoint").value == before + 1


def test_dropped_connections_are_retried_and_counted(moto: MotoServer, aws_env: None) -> None:
    """The connection reset before any answer (network failure), on GetRecords and on
    GetShardIterator: the reader retries, counts ``network_error``, reads every record once."""
    stream = f"drop-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 1)
    seqs = [kin.put_record(StreamName=stream, Data=f"line {i}".encode(), PartitionKey="p")["SequenceNumber"]
            for i in range(6)]
    calls = {"GetRecords": 0, "GetShardIterator": 0}

    def decide(target: str, body: dict[str, Any]) -> tuple[int, str] | None:
        if target in calls:
            calls[target] += 1
            if calls[target] <= 2:  # the first two of each are dropped
                return DROP
        return None

    before = reader_events_total.labels(stream, "network_error").value
    with FaultProxy(moto.endpoint, decide) as proxy:
        got = asyncio.run(_read(proxy.endpoint, stream, "shardId-000000000000",
                                Position(TRIM_HORIZON), len(seqs)))
        dropped = proxy.count("GetRecords", "DROP") + proxy.count("GetShardIterator", "DROP")
    assert dropped == 4
    assert [s for b in got for s in b.sequences] == seqs
    assert reader_events_total.labels(stream, "network_error").value == before + dropped


def test_at_timestamp_starts_at_the_first_record_arrived_since(moto: MotoServer, aws_env: None) -> None:
    stream = f"ts-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 1)
    for i in range(4):
        kin.put_record(StreamName=stream, Data=f"old {i}".encode(), PartitionKey="p")
    time.sleep(1.5)
    since = datetime.now(UTC)
    time.sleep(0.5)
    new = [kin.put_record(StreamName=stream, Data=f"new {i}".encode(), PartitionKey="p")["SequenceNumber"]
           for i in range(3)]
    got = asyncio.run(_read(moto.endpoint, stream, "shardId-000000000000",
                            Position(AT_TIMESTAMP, timestamp=since), len(new)))
    assert [s for b in got for s in b.sequences] == new


def test_role_arn_reads_with_the_assumed_role_credentials(moto: MotoServer, aws_env: None) -> None:
    """[[streams]] role_arn: Kinesis calls are signed with the credentials STS AssumeRole
    returned (moto's start with ASIA), not with the ambient ones."""
    stream = f"role-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 1)
    seqs = [kin.put_record(StreamName=stream, Data=b"x", PartitionKey="p")["SequenceNumber"]
            for _ in range(3)]
    with FaultProxy(moto.endpoint, lambda target, body: None) as proxy:
        got = asyncio.run(_read(proxy.endpoint, stream, "shardId-000000000000",
                                Position(TRIM_HORIZON), len(seqs),
                                role_arn="arn:aws:iam::123456789012:role/dredge-reader"))
    assert [s for b in got for s in b.sequences] == seqs
    keys = set(proxy.access_keys)
    assert keys and all(k.startswith("ASIA") for k in keys), keys
    assert "testing" not in keys


def test_kpl_aggregate_resumed_at_its_sub_sequence(moto: MotoServer, sample: Sample, aws_env: None) -> None:
    stream = f"kpl-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 1)
    lines = sample.lines[:9]
    users = [(f"pk{i}", line) for i, line in enumerate(lines[:6])]  # six user records, one line each
    agg = kin.put_record(StreamName=stream, Data=encode_kpl(users), PartitionKey="p")["SequenceNumber"]
    kin.put_record(StreamName=stream, Data=b"\n".join(lines[6:]), PartitionKey="p")
    # Stored up to user record 3 of the aggregate: resume AT it, skip 0..3.
    got = asyncio.run(_read(moto.endpoint, stream, "shardId-000000000000",
                            Position(SEQUENCE, agg, 3), 2))
    first = got[0]
    assert first.sequences[0] == agg and first.skip_through_subseq == 3
    parser = FlowParser(DEFAULT_FORMAT)
    parsed = [parse_batch(b, parser, DecodeConfig()) for b in got]
    rest = lines[4:6] + lines[6:]
    assert sum(p.counts.records for p in parsed) == len(rest)
    assert sum(int(p.cols.bytes.sum()) for p in parsed if p.cols is not None) == sum(
        int(x.split(b" ")[9]) for x in rest if x.split(b" ")[13] == b"OK")
