"""Three `dredge run` processes share one stream through one KCL lease table (each with its own
DuckDB file): the shards spread evenly; `kill -9` one and the others take its shards after the
failover time; summed over the three stores nothing is lost.

What can be counted twice, and why: each worker's DuckDB is its own. Rows a worker committed
to its DuckDB after its last lease checkpoint (a kill between the two writes, at most one
flush interval of its shards) are read again by the next owner, which starts from the lease
checkpoint. The test computes that overlap exactly from the dead worker's ``checkpoints``
table and the positions the new owners started from (their logs), asserts
``stored == put + overlap`` and prints the overlap.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from dredge.testing import MotoServer
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
    line_totals,
    put_payloads,
    store_checkpoints,
    store_totals,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

FAILOVER_S = 8.0
STARTED = re.compile(r"shard_reader_started stream=\S+ shard_id=(\S+) position=(\S+)")
# The data it was written for, not the shared `sample`: its checks are sensitive to machine
# load (lease renewals late under load), so what it reads stays as it was.
DATA = {"flows": 9_000, "seed": 21}


def owners(ddb: object, table: str) -> dict[str, str | None]:
    return {i["leaseKey"]["S"]: i.get("leaseOwner", {}).get("S") for i in lease_items(ddb, table)}


def log_count(tmp_path: Path, needle: str) -> int:
    return sum((tmp_path / f"{n}.log").read_text().count(needle) for n in ("w1", "w2", "w3"))


def both_alive(workers: dict[str, Worker]) -> None:
    workers["w1"].check_alive()
    workers["w3"].check_alive()


def test_three_workers_spread_failover_no_loss(moto: MotoServer, samples: Samples, tmp_path: Path) -> None:
    sample = samples.stream(**DATA)
    stream = f"multi-{uuid.uuid4().hex[:8]}"
    table = f"leases-{stream}-{stream}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 6)
    rng = random.Random(5)
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    workers: dict[str, Worker] = {}
    for name in ("w1", "w2", "w3"):
        cfg = write_config(tmp_path / f"{name}.toml", stream=stream, db=tmp_path / f"{name}.duckdb",
                           sample=sample, worker_id=name, failover_s=FAILOVER_S)
        workers[name] = Worker(cfg, moto.env(), tmp_path / f"{name}.log").start()
    try:
        for w in workers.values():
            w.wait_started()
        # Even spread: 2 leases each (stealing from the most loaded until balanced).
        wait_for(lambda: sorted(Counter(owners(ddb, table).values()).values()) == [2, 2, 2]
                 and None not in owners(ddb, table).values(), 90, "an even spread of 6 leases")
        spread = Counter(owners(ddb, table).values())
        assert spread == {"w1": 2, "w2": 2, "w3": 2}
        # A worker learns that a lease was stolen from it at its next renewal; until then its
        # reader runs on. Put data only once every steal has stopped its old reader (rows read
        # in that window would be stored twice: the over-count bounded in the README, "Checkpoints and delivery guarantees").
        wait_for(lambda: log_count(tmp_path, "lease_stolen") == log_count(tmp_path, "reason=lost"),
                 FAILOVER_S * 3, "the victims of steals to stop their readers")
        put_payloads(kin, stream, payloads[: len(payloads) // 2], rng, log)
        time.sleep(rng.uniform(1.0, 3.0))
        victim_shards = sorted(s for s, o in owners(ddb, table).items() if o == "w2")
        for w in workers.values():
            w.check_alive()
        workers["w2"].kill9()
        killed_at = time.monotonic()
        offsets = {n: (tmp_path / f"{n}.log").stat().st_size for n in ("w1", "w3")}
        put_payloads(kin, stream, payloads[len(payloads) // 2:], rng, log)
        wait_for(lambda: all(owners(ddb, table)[s] in ("w1", "w3") for s in victim_shards),
                 FAILOVER_S * 6, "the dead worker's leases to be taken over")
        takeover_s = time.monotonic() - killed_at
        assert sorted(Counter(owners(ddb, table).values()).values()) == [3, 3]
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), last), 150,
                 "checkpoints to reach the last records put",
                 alive=lambda: both_alive(workers))
    finally:
        codes = {n: w.terminate() for n, w in workers.items() if n != "w2"}
    assert codes == {"w1": 0, "w3": 0}, {n: workers[n].tail() for n in codes}

    stores = {n: store_totals(tmp_path / f"{n}.duckdb") for n in workers}
    got = tuple(sum(t.as_tuple()[k] for t in stores.values()) for k in range(3))
    put = line_totals(log.lines())

    # The overlap: records of the dead worker's shards after the position a new owner started
    # from, up to what the dead worker had stored.
    dead_stored = store_checkpoints(tmp_path / "w2.duckdb")
    started: dict[str, str] = {}
    for n in ("w1", "w3"):
        after_kill = (tmp_path / f"{n}.log").read_bytes()[offsets[n]:].decode()
        for shard, pos in STARTED.findall(after_kill):
            if shard in victim_shards:
                started[shard] = pos  # the takeover
    overlap_lines = []
    for shard, seq, lines in log.records:
        if shard not in victim_shards:
            continue
        start = started[shard].split("/")[0]
        begin = int(start) if start.isdigit() else 0
        end = int(dead_stored.get(shard, "0")) if dead_stored.get(shard, "0").isdigit() else 0
        if begin < int(seq) <= end:
            overlap_lines.extend(lines)
    overlap = line_totals(overlap_lines)
    # Leases lost by the live workers after the kill (stolen or expired under load) would move
    # shards again; before the kill no data had been put, so those moves store nothing.
    transfers = [line for n in ("w1", "w3")
                 for line in (tmp_path / f"{n}.log").read_bytes()[offsets[n]:].decode().splitlines()
                 if "lease_lost" in line or "lease_expired" in line or "lease_checkpoint_lost" in line]
    print(f"\nspread={dict(spread)} takeover_after_kill={takeover_s:.1f}s (failover {FAILOVER_S}s)"
          f" put_flows={put.flows} stored_flows={got[0]} overlap_flows={overlap.flows}"
          f" per_store={ {n: t.flows for n, t in stores.items()} } lost_leases_of_live={len(transfers)}")
    assert got[0] >= put.flows and got[1] >= put.bytes  # nothing lost
    if not transfers:
        # Only the kill moved leases: the double count is exactly the overlap computed above.
        assert got == tuple(a + b for a, b in zip(put.as_tuple(), overlap.as_tuple(), strict=True))
