"""`dredge run` against moto in server mode (Kinesis + DynamoDB over HTTP): a 4-shard stream
fed CloudWatch Logs envelopes, plain lines and KPL aggregates; totals in the store equal
the totals put; a graceful stop checkpoints and releases; kill -9 at random moments and
restart loses and duplicates nothing.

Progress is read from the KCL lease table (a lease's checkpoint passes a record only after
the store committed it); the DuckDB file is read once the worker has exited.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import orjson
import pytest

from dredge.cli import main
from dredge.testing import MotoServer
from tests.integration.samples import Samples
from tests.integration.streams import (
    PutLog,
    Worker,
    by_port,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    grouped,
    kinesis,
    lease_checkpoints,
    lease_items,
    line_totals,
    lines_upto,
    put_control_message,
    put_payloads,
    store_checkpoints,
    store_totals,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


# More data than the shared `sample`: the first test checks it put more than 5,000 flows.
BIG = {"flows": 12_000, "seed": 5}


def test_four_shards_three_envelopes_totals_equal(moto: MotoServer, samples: Samples, tmp_path: Path) -> None:
    sample = samples.stream(**BIG)
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 4)
    rng = random.Random(1)
    log = PutLog()
    half = len(sample.lines) // 2
    put_payloads(kin, stream, encode_mixed(sample.lines[:half], rng, bad_every=10), rng, log)
    put_control_message(kin, stream, log)
    db = tmp_path / "w.duckdb"
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=db, sample=sample, worker_id="w1")
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start()
    try:
        # more data while it runs
        time.sleep(1.0)
        put_payloads(kin, stream, encode_mixed(sample.lines[half:], rng, bad_every=10), rng, log)
        last = log.last_sequence()
        assert len(last) == 4  # every shard got data
        wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"), last),
                 120, "checkpoints to reach the last records put", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    put = line_totals(log.lines())
    assert put.flows > 5_000
    assert store_totals(db).as_tuple() == put.as_tuple()
    # Same rows as `dredge replay` of the same lines (enrichment and rollup agree).
    text = tmp_path / "lines.log"
    text.write_bytes(b"version account-id interface-id srcaddr dstaddr srcport dstport protocol"
                     b" packets bytes start end action log-status\n"
                     + b"\n".join(line for line in log.lines()) + b"\n")
    ref = tmp_path / "replay.duckdb"
    assert main(["replay", str(text), "--index", str(sample.owners), "--cidrs", str(sample.networks),
                 "--db", str(ref), "--no-progress"]) in (0, 1)
    assert grouped(db) == grouped(ref)
    ports = by_port(ref)
    assert by_port(db) == ports and len({p for _, p in ports if p}) > 3  # real service ports
    # Dead letters: exactly the malformed lines put, each with its Kinesis origin.
    dead = [orjson.loads(x) for x in db.with_suffix(".deadletter.jsonl").read_bytes().splitlines()]
    assert log.bad_lines > 0 and len(dead) == log.bad_lines
    seqs = {(s, q) for s, q, _ in log.records}
    assert all((d["shard"], d["sequence"]) in seqs and d["stream"] == stream for d in dead)
    # Graceful stop released every lease (no owner) and left KCL's attributes in place.
    items = lease_items(ddb, f"leases-{stream}-{stream}")
    assert len(items) == 4
    for item in items:
        assert "leaseOwner" not in item
        assert {"leaseKey", "leaseCounter", "checkpoint", "checkpointSubSequenceNumber",
                "ownerSwitchesSinceCheckpoint"} <= set(item)
    log_text = (tmp_path / "w.log").read_text()
    assert "daemon_stopped" in log_text


@pytest.mark.slow
def test_kill9_single_worker_restarts_exactly_once(moto: MotoServer, samples: Samples, tmp_path: Path) -> None:
    sample = samples.stream(**BIG)
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 4)
    rng = random.Random(2)
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    put_payloads(kin, stream, payloads[: len(payloads) // 4], rng, log)
    db = tmp_path / "w.duckdb"
    # A fixed worker id: the restarted process adopts its own leases at once.
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=db, sample=sample,
                       worker_id="single", flush_interval_s=0.2)
    kills = 0
    progress: list[int] = []
    chunks = [payloads[len(payloads) * k // 4: len(payloads) * (k + 1) // 4] for k in range(1, 4)]
    for chunk in chunks:
        worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
        put_payloads(kin, stream, chunk, rng, log)
        time.sleep(rng.uniform(0.2, 2.5))  # a random moment: taking leases, reading, flushing
        worker.check_alive()
        worker.kill9()
        kills += 1
        # Dead, the store is readable: it holds exactly the records up to its checkpoints.
        stored_at = store_checkpoints(db)
        progress.append(sum(int(v) for v in stored_at.values() if v.isdigit()))
        assert store_totals(db).as_tuple() == line_totals(lines_upto(log, stored_at)).as_tuple()
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"), last),
                 120, "checkpoints to reach the last records put", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    assert kills == 3
    text = (tmp_path / "w.log").read_text()
    assert text.count("daemon_started") == 4
    assert progress[-1] > 0, "no kill landed after something was stored"
    assert store_totals(db).as_tuple() == line_totals(log.lines()).as_tuple()
