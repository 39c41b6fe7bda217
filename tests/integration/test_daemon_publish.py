"""`dredge run` with ``[sink.kinesis_out]``: each flush is published to the output stream (what
Druid's supervisor reads), then stored and checkpointed. The output stream unreachable
(nothing listening at its endpoint), then answering 500s, then back: the daemon logs and
counts the failures, moves no checkpoint while they last, and afterwards the output stream
and the store both hold exactly what was put, once.

Real servers: moto in server mode (Kinesis in and out, DynamoDB leases); the output endpoint
is a loopback proxy in front of moto that is first not started (connection refused), then
injects 500s, then forwards.
"""

from __future__ import annotations

import random
import re
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from dredge.testing import MotoServer, free_port
from tests.integration.faults import FaultProxy
from tests.integration.streams import (
    REGION,
    PutLog,
    Sample,
    Totals,
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


def sink_metrics(port: int) -> Counter[str]:
    """``dredge_sink_rows_total`` of the kinesis sink by outcome."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: Counter[str] = Counter()
    for m in re.finditer(r'^dredge_sink_rows_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("sink") == "kinesis":
            out[labels["outcome"]] += int(float(m.group(2)))
    return out


def published_rows(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every JSON row in the output stream, read from the start of each shard."""
    rows: list[dict[str, Any]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = client.get_records(ShardIterator=it, Limit=1000)
            for rec in resp["Records"]:
                rows.extend(orjson.loads(line) for line in rec["Data"].split(b"\n"))
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
    return rows


def row_totals(rows: list[dict[str, Any]]) -> Totals:
    return Totals(sum(r["flows"] for r in rows), sum(r["bytes"] for r in rows),
                  sum(r["packets"] for r in rows))


def numeric(checkpoints: dict[str, str]) -> dict[str, str]:
    return {s: c for s, c in checkpoints.items() if c.isdigit() or c == "SHARD_END"}


def test_output_stream_down_holds_checkpoints_and_loses_nothing(
        moto: MotoServer, sample: Sample, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    stream, out_stream = f"pub-in-{tag}", f"pub-out-{tag}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    create_stream(kin, out_stream, 2)
    rng = random.Random(5)
    log = PutLog()
    half = len(sample.lines) // 2
    put_payloads(kin, stream, encode_mixed(sample.lines[:half], rng), rng, log)

    phase = {"fail_puts": 0}

    def decide(target: str, body: dict[str, Any]) -> tuple[int, str] | None:
        if target == "PutRecords" and phase["fail_puts"] > 0:
            phase["fail_puts"] -= 1
            return 500, "InternalFailure"
        return None

    proxy = FaultProxy(moto.endpoint, decide)  # not started yet: connection refused
    port = free_port()
    db = tmp_path / "w.duckdb"
    table = f"leases-{stream}-{stream}"
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=db, sample=sample,
                       worker_id="publisher", metrics_port=port, sink_retry_max_s=1.0,
                       extra=f"""
[sink.kinesis_out]
stream = "{out_stream}"
region = "{REGION}"
endpoint_url = "{proxy.endpoint}"
max_attempts = 2
backoff_base_s = 0.05
backoff_max_s = 0.2
connect_timeout_s = 1.0
read_timeout_s = 5.0
""")
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        # 1. nothing listens at the output endpoint: flushes fail, are retried, nothing moves
        wait_for(lambda: sink_metrics(port)["failed"] > 0 and
                 worker.log.read_text().count("flush_retry_wait") >= 3, 60,
                 "publish failures to be counted and retried", alive=worker.check_alive)
        assert numeric(lease_checkpoints(ddb, table)) == {}, "a checkpoint moved past unpublished data"
        failed_before = sink_metrics(port)["failed"]
        assert sink_metrics(port)["published"] == 0

        # 2. the endpoint answers, but the next PutRecords calls fail with 500s
        phase["fail_puts"] = 6
        proxy.__enter__()
        wait_for(lambda: proxy.count("PutRecords", "InternalFailure") == 6, 60,
                 "the injected 500s to be hit", alive=worker.check_alive)
        # 3. back to normal: the held flushes go out, then the rest of the input
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), last), 90,
                 "checkpoints to reach the first half", alive=worker.check_alive)
        put_payloads(kin, stream, encode_mixed(sample.lines[half:], rng), rng, log)
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), last), 90,
                 "checkpoints to reach the second half", alive=worker.check_alive)
        metrics = sink_metrics(port)
    finally:
        rc = worker.terminate()
        proxy.__exit__(None, None, None)
    assert rc == 0, worker.tail()
    assert metrics["failed"] >= failed_before > 0
    assert metrics["published"] > 0
    text = worker.log.read_text()
    assert "publish_failed" in text and "flush_retry_wait" in text

    want = line_totals(log.lines())
    assert store_totals(db).as_tuple() == want.as_tuple()
    rows = published_rows(kinesis(moto.endpoint), out_stream)
    assert row_totals(rows).as_tuple() == want.as_tuple()  # every flow once: none lost, none twice
    assert metrics["published"] == len(rows)
