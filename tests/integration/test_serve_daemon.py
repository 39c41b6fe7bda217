"""The daemon's HTTP server while `dredge run` ingests from a moto-server Kinesis stream:
/api/query reads the daemon's own store (no lock conflict); totals never go down, never
exceed what was put, and end equal to it; flushes stay quick while a client queries all the
time; /readyz is 200 once running and flips to 503 when the lease table is deleted or the
live index stops updating (its CIDR map unreadable: the provider stops reporting).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dredge.testing import MotoServer, free_port
from tests.integration.samples import Samples
from tests.integration.streams import (
    PutLog,
    Sample,
    Totals,
    Worker,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    line_totals,
    put_payloads,
    wait_for,
    write_config,
)
from tests.integration.test_serve import api, http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def sample(samples: Samples) -> Sample:
    return samples.stream(flows=12_000, seed=9)


def totals(url: str) -> Totals:
    got = api(url, kind="timeseries", interval="1d")
    t = Totals()
    for row in got["rows"]:
        rec = dict(zip(got["columns"], row, strict=True))
        t.flows += rec["flows"]
        t.bytes += rec["bytes"]
        t.packets += rec["packets"]
    return t


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    status, body = http("GET", url + "/readyz")
    return status, json.loads(body)


def start_ready(cfg: Path, moto: MotoServer, log: Path, url: str) -> Worker:
    """`dredge run` with ``cfg``, once its /readyz answers 200 (stopped again if it never does)."""
    worker = Worker(cfg, moto.env(), log).start()
    try:
        worker.wait_started()
        wait_for(lambda: readyz(url)[0] == 200, 60, "/readyz 200", alive=worker.check_alive)
    except BaseException:
        worker.terminate()
        raise
    return worker


def metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_queries_while_ingesting_and_lease_table_gone(moto: MotoServer, sample: Sample,
                                                      tmp_path: Path) -> None:
    stream = f"serve-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=tmp_path / "w.duckdb",
                       sample=sample, worker_id="w1", metrics_port=port,
                       extra="\n[serve]\nlease_check_interval_s = 0.3\n")
    worker = start_ready(cfg, moto, tmp_path / "w.log", url)
    try:
        rng = random.Random(4)
        log = PutLog()
        chunks = 6
        step = len(sample.lines) // chunks + 1
        seen: list[Totals] = []
        put = Totals()
        for k in range(chunks):
            part = sample.lines[k * step:(k + 1) * step]
            put_payloads(kin, stream, encode_mixed(part, rng), rng, log)
            put = line_totals(log.lines())
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:  # a dashboard refreshing all the time
                got = totals(url)
                seen.append(got)
                assert all(g <= p for g, p in zip(got.as_tuple(), put.as_tuple(), strict=True)), \
                    (got, put)
                time.sleep(0.05)
        wait_for(lambda: (seen.append(totals(url)) or seen[-1].as_tuple()) == put.as_tuple(),
                 120, "the served totals to reach the totals put", alive=worker.check_alive)
        for before, after in itertools.pairwise(seen):
            assert all(a >= b for a, b in zip(after.as_tuple(), before.as_tuple(), strict=True)), \
                (before, after)
        assert len({s.as_tuple() for s in seen}) > 2  # answers came in while it ingested
        # flushes kept going and stayed quick while queries ran
        text = http("GET", url + "/metrics")[1].decode()
        flushes = metric(text, "dredge_sink_flush_seconds_count", '{sink="duckdb"}')
        quick = metric(text, "dredge_sink_flush_seconds_bucket", '{le="1.0",sink="duckdb"}')
        assert flushes >= chunks and quick == flushes, text
        assert metric(text, "dredge_stream_flushes_total", '{outcome="failed"}') == 0
        ops = json.loads(http("GET", url + "/api/ops")[1])
        assert ops["daemon"] is True and ops["leases_held"] == 2
        assert sorted(s["shard"] for s in ops["shards"]) == ["shardId-000000000000",
                                                              "shardId-000000000001"]
        assert ops["flush"]["count"] >= chunks and ops["flush"]["p99_s"] is not None
        meta = json.loads(http("GET", url + "/api/meta")[1])
        assert meta["daemon"] is True and meta["time_range"] is not None
        # the lease table is deleted under the daemon: not ready, with the reason
        ddb.delete_table(TableName=f"leases-{stream}-{stream}")
        wait_for(lambda: readyz(url)[0] == 503, 30, "/readyz 503", alive=worker.check_alive)
        body = readyz(url)[1]
        assert "lease table not readable" in body["reasons"]["leases"], body
        assert http("GET", url + "/healthz") == (200, b"ok\n")  # alive, not ready
    finally:
        worker.terminate()


def test_readyz_when_the_index_stops_updating(moto: MotoServer, sample: Sample,
                                              tmp_path: Path) -> None:
    stream = f"serve-{uuid.uuid4().hex[:8]}"
    create_stream(kinesis(moto.endpoint), stream, 1)
    networks = tmp_path / "networks.csv"
    shutil.copy(sample.networks, networks)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    index = (f'ownership = ["{sample.owners}"]\ncidrs = ["{networks}"]\n'
             f'state_path = "{tmp_path / "index.state"}"\ncidr_poll_interval_s = 0.2\n')
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=tmp_path / "w.duckdb",
                       index=index, worker_id="w1", metrics_port=port,
                       extra="\n[serve]\nindex_stale_s = 1.5\nlease_check_interval_s = 0.3\n")
    worker = start_ready(cfg, moto, tmp_path / "w.log", url)
    try:
        moved = networks.with_suffix(".away")
        networks.rename(moved)  # the CIDR provider cannot read it: it stops reporting
        wait_for(lambda: readyz(url)[0] == 503, 30, "/readyz 503", alive=worker.check_alive)
        reason = readyz(url)[1]["reasons"]["index"]
        assert reason.startswith("index stopped updating (older than 1.5 s): cidr/"), reason
        ops = json.loads(http("GET", url + "/api/ops")[1])
        assert ops["index_freshness_s"]["cidr"] > 1.5
        moved.rename(networks)  # back: fresh again
        wait_for(lambda: readyz(url)[0] == 200, 30, "/readyz 200 again", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
