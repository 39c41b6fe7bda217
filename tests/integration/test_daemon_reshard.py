"""Split and merge shards while `dredge run` reads: nothing lost, parents finished first.

Kinesis here is kinesis-local (kinesis-mock, infra/kinesis-local), not moto: moto's
SplitShard moves the parent's records into the children with new sequence numbers and its
MergeShards copies them, so a reader of moto would see records twice; kinesis-mock keeps
records in the closed parent and ends it with a null NextShardIterator, as Kinesis does.
Leases stay in moto's DynamoDB.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from pathlib import Path

import pytest

from dredge.testing import KinesisLocal, MotoServer
from tests.integration.streams import (
    PutLog,
    Sample,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    lease_checkpoints,
    lease_items,
    line_totals,
    put_payloads,
    store_totals,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

def shard_map(client: object, stream: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["ShardId"]: s for s in client.list_shards(StreamName=stream)["Shards"]}  # type: ignore[attr-defined]


def wait_active(client: object, stream: str) -> None:
    wait_for(lambda: client.describe_stream_summary(StreamName=stream)  # type: ignore[attr-defined]
             ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 30, "the stream to be ACTIVE")


def test_split_and_merge_while_running(kinesis_local: KinesisLocal, moto: MotoServer,
                                       sample: Sample, tmp_path: Path) -> None:
    stream = f"reshard-{uuid.uuid4().hex[:8]}"
    table = f"leases-{stream}-{stream}"
    kin, ddb = kinesis(kinesis_local.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    wait_active(kin, stream)
    rng = random.Random(3)
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    thirds = [payloads[len(payloads) * k // 3: len(payloads) * (k + 1) // 3] for k in range(3)]
    put_payloads(kin, stream, thirds[0], rng, log)
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=tmp_path / "w.duckdb",
                       sample=sample, worker_id="resharder", stream_endpoint=kinesis_local.endpoint)
    # finished shards' leases are deleted once their children started (checked below)
    cfg.write_text(cfg.read_text().replace("[lease]\n", "[lease]\ncleanup_interval_s = 1.0\n"))
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        time.sleep(1.0)
        # Split shard 0 while it is being read; its children take new records.
        s0 = shard_map(kin, stream)["shardId-000000000000"]["HashKeyRange"]
        mid = (int(s0["StartingHashKey"]) + int(s0["EndingHashKey"])) // 2
        kin.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(mid))
        wait_active(kin, stream)
        put_payloads(kin, stream, thirds[1], rng, log)
        time.sleep(1.0)
        children = sorted(s for s, d in shard_map(kin, stream).items()
                          if d.get("ParentShardId") == "shardId-000000000000")
        assert len(children) == 2
        # Merge the two children back into one.
        kin.merge_shards(StreamName=stream, ShardToMerge=children[0], AdjacentShardToMerge=children[1])
        wait_active(kin, stream)
        put_payloads(kin, stream, thirds[2], rng, log)
        shards = shard_map(kin, stream)
        merged = [s for s, d in shards.items() if d.get("AdjacentParentShardId")]
        assert len(merged) == 1
        closed = ["shardId-000000000000", *children]
        last = log.last_sequence()
        assert set(last) >= {"shardId-000000000000", *children, merged[0]}

        def done() -> bool:
            cps = lease_checkpoints(ddb, table)
            last_open = {s: q for s, q in last.items() if s not in closed}
            return caught_up(cps, last_open) and all(s not in cps for s in closed)

        wait_for(done, 150, "every record stored and the closed shards' leases cleaned up",
                 alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    assert store_totals(tmp_path / "w.duckdb").as_tuple() == line_totals(log.lines()).as_tuple()
    # Lineage in the lease table, as KCL writes it; the finished shards' leases are gone
    # (cleaned up once their children started) and were never created again.
    items = {i["leaseKey"]["S"]: i for i in lease_items(ddb, table)}
    assert items[merged[0]]["parentShardId"]["SS"] == sorted(children)
    assert not set(closed) & set(items)
    text = (tmp_path / "w.log").read_text()
    deleted = re.findall(r"lease_deleted .*?shard_id=(\S+)", text)
    assert sorted(deleted) == sorted(closed), deleted
    created = re.findall(r"lease_created .*?shard_id=(\S+)", text)
    assert all(created.count(s) == 1 for s in closed), created
    # Parents before children: a child's reader starts only after its parents were finished.
    events = [(m.group(1), m.group(2)) for m in re.finditer(
        r"(shard_finished|shard_reader_started) stream=\S+ shard_id=(\S+)", (tmp_path / "w.log").read_text())]
    order = {e: i for i, e in enumerate(events)}  # the last occurrence of each
    first_start = {}
    for i, (kind, shard) in enumerate(events):
        if kind == "shard_reader_started":
            first_start.setdefault(shard, i)
    for child, parents in [(c, ["shardId-000000000000"]) for c in children] + [(merged[0], children)]:
        for p in parents:
            assert order[("shard_finished", p)] < first_start[child], (p, child, events)
