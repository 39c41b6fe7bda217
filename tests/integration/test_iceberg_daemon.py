"""`dredge run` with [sink.iceberg] (moto S3 warehouse; SQL and Glue catalogs): one worker
killed with SIGKILL at random moments while records flow, restarted each time, then stopped
gracefully: the Iceberg table holds every flow put exactly once, grouped by (minute, src_app,
dst_app) equal to `dredge replay` of the same lines, and the lease checkpoints never passed
the table's committed positions.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pytest

from dredge.cli import main
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.positions import committed_positions
from dredge.sinks.iceberg.table import open_table
from dredge.testing import MotoServer
from tests.integration.samples import Samples
from tests.integration.streams import (
    PutLog,
    Sample,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    grouped,
    kinesis,
    lease_checkpoints,
    line_totals,
    put_payloads,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Groups = dict[tuple[object, ...], tuple[int, int, int]]


def iceberg_section(catalog: dict[str, str], commit_interval_s: float = 1.0) -> str:
    props = "\n".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in catalog.items())
    return f"\n[sink.iceberg]\ncommit_interval_s = {commit_interval_s}\n[sink.iceberg.catalog]\n{props}\n"


def table_groups(catalog: dict[str, str]) -> Groups:
    """The Iceberg table's totals by (minute, src_app, dst_app), read by pyiceberg."""
    data = open_table(IcebergConfig(catalog=catalog), create=False).scan().to_arrow()
    out: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    g = data.group_by(["window_start", "src_app", "dst_app"]).aggregate(
        [("flows", "sum"), ("bytes", "sum"), ("packets", "sum")])
    for r in g.to_pylist():
        key = (int(r["window_start"].timestamp()), r["src_app"], r["dst_app"])
        out[key] = [r["flows_sum"], r["bytes_sum"], r["packets_sum"]]
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def reference_groups(log: PutLog, sample: Sample, tmp_path: Path) -> Groups:
    """`dredge replay` of every line put (the batch path), grouped the same way."""
    text = tmp_path / "lines.log"
    text.write_bytes(b"version account-id interface-id srcaddr dstaddr srcport dstport protocol"
                     b" packets bytes start end action log-status\n" + b"\n".join(log.lines()) + b"\n")
    ref = tmp_path / "reference.duckdb"
    assert main(["replay", str(text), "--index", str(sample.owners), "--cidrs", str(sample.networks),
                 "--db", str(ref), "--no-progress"]) in (0, 1)
    out: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (ws, src, dst, _action), (f, b, p) in grouped(ref).items():
        acc = out[(int(ws.timestamp()) if hasattr(ws, "timestamp") else ws, src, dst)]
        acc[0] += f
        acc[1] += b
        acc[2] += p
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def lease_never_ahead(leases: dict[str, str], committed: dict[str, str]) -> bool:
    for shard, cp in leases.items():
        if cp.isdigit():
            got = committed.get(shard)
            if got is None or (got.isdigit() and int(got) < int(cp)):
                return False
    return True


def test_daemon_kill9_restarts_exactly_once(moto: MotoServer, samples: Samples, tmp_path: Path,
                                            iceberg_catalog: dict[str, str]) -> None:
    sample = samples.stream(flows=6_000, seed=9)
    stream = f"ice-{uuid.uuid4().hex[:8]}"
    table = f"leases-{stream}-{stream}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    rng = random.Random(13)
    log = PutLog()
    payloads = encode_mixed(sample.lines, rng)
    cfg = write_config(tmp_path / "w.toml", stream=stream, db=tmp_path / "w.duckdb", sample=sample,
                       worker_id="w1", failover_s=4.0, extra=iceberg_section(iceberg_catalog))
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start()
    parts = [payloads[i::4] for i in range(4)]
    try:
        worker.wait_started()
        for part in parts[:3]:
            put_payloads(kin, stream, part, rng, log)
            time.sleep(rng.uniform(0.5, 2.5))
            worker.kill9()
            worker.start().wait_started()
        put_payloads(kin, stream, parts[3], rng, log)
        last = log.last_sequence()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), last), 120,
                 "lease checkpoints (behind the table) to reach the last records put",
                 alive=worker.check_alive)
        ice = open_table(IcebergConfig(catalog=iceberg_catalog), create=False)
        committed = {s: p[0] for (st, s), p in committed_positions(ice).items() if st == stream}
        assert lease_never_ahead(lease_checkpoints(ddb, table), committed)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    put = line_totals(log.lines())
    data = open_table(IcebergConfig(catalog=iceberg_catalog), create=False).scan().to_arrow()
    got = tuple(int(pc.sum(data.column(c)).as_py()) for c in ("flows", "bytes", "packets"))
    assert got == put.as_tuple()
    assert table_groups(iceberg_catalog) == reference_groups(log, sample, tmp_path)
    assert "iceberg_committed" in (tmp_path / "w.log").read_text()
