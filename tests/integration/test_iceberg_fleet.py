"""The fleet on one Iceberg ledger: `dredge run` workers sharing a stream through DynamoDB
leases (moto), the table on moto S3 with a SQL catalog.

- Three workers over six shards, `kill -9` of a random worker at random moments (restarted
  each time), a shard split while they run: the table's totals by (minute, src_app, dst_app)
  equal `dredge replay` of every line put, exactly.
- A zombie: a worker paused with SIGSTOP past failover (its leases taken over, the new owner
  commits), then SIGCONT: nothing is written twice.

Kinesis is kinesis-local for the split (moto's SplitShard copies the parent's records into
the children: a reader of moto would see them twice, see test_daemon_reshard.py); moto for
the zombie test.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.positions import committed_positions
from dredge.sinks.iceberg.table import open_table
from dredge.testing import KinesisLocal, MotoServer, free_port
from tests.integration.samples import Samples
from tests.integration.streams import (
    PutLog,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    lease_checkpoints,
    lease_items,
    put_payloads,
    wait_for,
    write_config,
)
from tests.integration.test_iceberg_daemon import iceberg_section, reference_groups, table_groups

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

FAILOVER_S = 8.0  # as test_daemon_workers: lease renewals are late on a loaded machine


def start_workers(names: list[str], tmp_path: Path, stream: str, sample: object, catalog: dict[str, str],
                  env: dict[str, str], stream_endpoint: str = "", commit_s: float = 1.0,
                  metrics_port: int = 0) -> dict[str, Worker]:
    workers = {}
    for name in names:
        cfg = write_config(tmp_path / f"{name}.toml", stream=stream, db=tmp_path / f"{name}.duckdb",
                           sample=sample, worker_id=name, failover_s=FAILOVER_S,  # type: ignore[arg-type]
                           stream_endpoint=stream_endpoint, extra=iceberg_section(catalog, commit_s),
                           metrics_port=metrics_port)
        workers[name] = Worker(cfg, env, tmp_path / f"{name}.log").start()
    for w in workers.values():
        w.wait_started()
    return workers


def buffered_rows(port: int) -> float:
    """The worker's dredge_iceberg_buffered_rows gauge, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    line = next((x for x in text.splitlines() if x.startswith("dredge_iceberg_buffered_rows ")), "x 0")
    return float(line.split()[1])


def stop_all(workers: dict[str, Worker]) -> dict[str, int]:
    return {n: w.terminate() for n, w in workers.items()}


def owners(ddb: object, table: str) -> set[str | None]:
    return {i.get("leaseOwner", {}).get("S") for i in lease_items(ddb, table)}


@pytest.mark.parametrize("iceberg_catalog", ["sql"], indirect=True)
def test_fleet_kill9_and_split_exactly_once(kinesis_local: KinesisLocal, moto: MotoServer, samples: Samples,
                                            tmp_path: Path, iceberg_catalog: dict[str, str]) -> None:
    sample = samples.stream(flows=9_000, seed=21)
    stream = f"fleet-{uuid.uuid4().hex[:8]}"
    table = f"leases-{stream}-{stream}"
    kin, ddb = kinesis(kinesis_local.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 6)
    wait_for(lambda: kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
             ["StreamStatus"] == "ACTIVE", 30, "the stream")
    rng = random.Random(int(time.time()))
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    chunks = [payloads[i::8] for i in range(8)]
    workers = start_workers(["w1", "w2", "w3"], tmp_path, stream, sample, iceberg_catalog, moto.env(),
                            stream_endpoint=kinesis_local.endpoint)
    kills: list[str] = []
    try:
        for i, chunk in enumerate(chunks):
            put_payloads(kin, stream, chunk, rng, log)
            if i == 3:  # split a shard while records flow
                s0 = next(s for s in kin.list_shards(StreamName=stream)["Shards"]
                          if s["ShardId"] == "shardId-000000000000")["HashKeyRange"]
                mid = (int(s0["StartingHashKey"]) + int(s0["EndingHashKey"])) // 2
                kin.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000",
                                NewStartingHashKey=str(mid))
                wait_for(lambda: kin.describe_stream_summary(StreamName=stream)
                         ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 30, "the split")
            time.sleep(rng.uniform(0.3, 2.5))
            if i in (1, 3, 5, 6):  # kill -9 a random worker at a random moment, restart it
                name = rng.choice(sorted(workers))
                kills.append(name)
                workers[name].kill9()
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0.0, FAILOVER_S * 1.5))  # sometimes past failover
                workers[name].start()
        for w in workers.values():
            w.wait_started()
        last = log.last_sequence()

        def done() -> bool:
            """The table holds every record put (the split parent: SHARD_END), and the lease
            checkpoints followed (a finished parent's lease may be cleaned up already)."""
            ice = open_table(IcebergConfig(catalog=iceberg_catalog), create=False)
            positions = {s: p[0] for (_, s), p in committed_positions(ice).items()}
            leases = lease_checkpoints(ddb, table)
            return caught_up(positions, last) and caught_up(leases, {s: q for s, q in last.items() if s in leases})

        try:
            wait_for(done, 150, "the table and then the leases to reach the last records put", poll=1.0,
                     alive=lambda: [w.check_alive() for w in workers.values()] and None)
        except AssertionError:
            ice = open_table(IcebergConfig(catalog=iceberg_catalog), create=False)
            print(f"\nlast={last}\nleases={lease_checkpoints(ddb, table)}\ntable={committed_positions(ice)}")
            raise
    finally:
        codes = stop_all(workers)
    assert set(codes.values()) == {0}, {n: w.tail() for n, w in workers.items()}
    got, want = table_groups(iceberg_catalog), reference_groups(log, sample, tmp_path)
    text = "".join((tmp_path / f"{n}.log").read_text() for n in workers)
    print(f"\nkills={kills} groups={len(want)} flows={sum(v[0] for v in want.values())}"
          f" commits={text.count('iceberg_committed')} moved={text.count('iceberg_shard_moved')}")
    assert len(kills) >= 3
    assert got == want


@pytest.mark.parametrize("iceberg_catalog", ["sql"], indirect=True)
def test_zombie_writes_nothing_twice(moto: MotoServer, samples: Samples, tmp_path: Path,
                                     iceberg_catalog: dict[str, str]) -> None:
    sample = samples.stream(flows=6_000, seed=9)
    stream = f"zombie-{uuid.uuid4().hex[:8]}"
    table = f"leases-{stream}-{stream}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    rng = random.Random(4)
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    half = len(payloads) // 2
    # w1 alone first: it holds both shards
    # w1 commits every 30 s: paused as soon as it buffered rows, it holds rows it has not committed
    port = free_port()
    workers = start_workers(["w1"], tmp_path, stream, sample, iceberg_catalog, moto.env(), commit_s=30.0,
                            metrics_port=port)
    zombie = workers["w1"]
    try:
        wait_for(lambda: len(lease_checkpoints(ddb, table)) == 2, 30, "w1 to hold both leases")
        put_payloads(kin, stream, payloads[:half], rng, log)
        wait_for(lambda: buffered_rows(port) > 0, 60, "w1 to store rows locally and buffer them")
        assert zombie.proc is not None
        zombie.proc.send_signal(signal.SIGSTOP)
        workers.update(start_workers(["w2"], tmp_path, stream, sample, iceberg_catalog, moto.env()))
        wait_for(lambda: owners(ddb, table) == {"w2"}, FAILOVER_S * 8,
                 "w2 to take both leases of the paused worker")
        put_payloads(kin, stream, payloads[half:], rng, log)
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), last), 90,
                 "w2 to commit everything", alive=workers["w2"].check_alive)
        committed = committed_positions(open_table(IcebergConfig(catalog=iceberg_catalog), create=False))
        assert {s: p[0] for (_, s), p in committed.items()} == last  # the table holds it all
        zombie.proc.send_signal(signal.SIGCONT)  # it wakes up believing it holds the leases
        time.sleep(FAILOVER_S * 2)  # its overdue flushes and commits run
        assert committed_positions(open_table(IcebergConfig(catalog=iceberg_catalog), create=False)) == committed
    finally:
        if zombie.proc is not None:
            zombie.proc.send_signal(signal.SIGCONT)
        codes = stop_all(workers)
    assert codes["w2"] == 0, workers["w2"].tail()
    assert table_groups(iceberg_catalog) == reference_groups(log, sample, tmp_path)
    text = (tmp_path / "w1.log").read_text()
    moved, dropped = text.count("iceberg_shard_moved"), text.count("iceberg_rows_dropped")
    print(f"\nzombie: shards found moved at commit={moved}, buffers dropped at lease loss={dropped},"
          f" zombie commits={text.count('iceberg_committed')}")
    assert moved + dropped >= 1  # it did hold uncommitted rows, and dropped them
