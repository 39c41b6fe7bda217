"""Dredge into a real Apache Druid (``make druid-up``): the SQL backfill, the Kinesis output
stream read by Druid's supervisor, queries through pydruid; Druid stopped mid-run.

Every check compares Druid with the DuckDB store for the same input: totals by
(minute, src_app, dst_app) must be equal, and ``dredge query --backend druid`` must print what
``dredge query`` prints. The cluster is started outside pytest (infra/druid/druid.sh); the
test restarts only the Indexer, by its pid file, with druid.sh. Each test writes its own
datasource (dropped at the end).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dredge.cli import main
from dredge.sinks.druid import DruidAPI
from dredge.testing import MotoServer, service_unavailable
from tests.integration.druid import DruidCluster, Totals, druid_totals, duckdb_totals
from tests.integration.samples import replay_args
from tests.integration.streams import Sample

pytestmark = [pytest.mark.integration, pytest.mark.druid]

DRUID_SH = Path(__file__).resolve().parents[2] / "infra" / "druid" / "druid.sh"
PIDS = DRUID_SH.parent / "var" / "pids"
ROUTER = f"http://127.0.0.1:{os.environ.get('DRUID_ROUTER_PORT', 18888)}"
KINESIS = f"http://127.0.0.1:{os.environ.get('KINESIS_LOCAL_PORT', 14568)}"
S3 = f"http://127.0.0.1:{os.environ.get('DRUID_S3_PORT', 15055)}"  # druid.sh's moto: Druid reads it
INGEST_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def store(druid_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same input replayed into DuckDB alone: what Druid must hold."""
    db = tmp_path_factory.mktemp("druid-ref") / "ref.duckdb"
    assert main(replay_args(druid_logs, db)) == 0
    return db


def wait_totals(api: DruidAPI, ds: str, want: Totals, timeout: float = INGEST_TIMEOUT) -> Totals:
    """Poll Druid SQL until its totals equal ``want`` (or time runs out); the last totals."""
    deadline = time.monotonic() + timeout
    got: Totals = {}
    while time.monotonic() < deadline:
        try:
            got = druid_totals(api, ds)
        except Exception:  # not queryable yet ("not found"), or the cluster is restarting
            got = {}
        if got == want:
            break
        time.sleep(1)
    return got


def metric(name: str, **labels: str) -> float:
    from dredge.telemetry.metrics import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def summed(t: Totals) -> tuple[int, int, int]:
    return tuple(sum(v[i] for v in t.values()) for i in range(3))  # type: ignore[return-value]


# -- the Indexer, stopped and started -------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie no one has reaped yet is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop_indexer() -> None:
    """SIGTERM the Indexer (pid file of druid.sh); SIGKILL after 30 s; return once it is gone.

    Its pid file goes too: the JVM's parent is init (druid.sh exited), which may leave it a
    zombie for a while, and druid.sh would take a zombie for a running Indexer."""
    pidfile = PIDS / "indexer.pid"
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _gone(pid):
            time.sleep(0.2)
        if _gone(pid):
            pidfile.unlink(missing_ok=True)
            return
        if sig is not None:
            os.kill(pid, sig)
    raise AssertionError(f"the Indexer (pid {pid}) does not stop")


def start_indexer() -> None:
    subprocess.run([str(DRUID_SH), "up"], check=True, timeout=400,
                   env={**os.environ, "DRUID_SERVICES": "indexer"})


def running_tasks(api: DruidAPI, ds: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = api.request(
        "GET", f"/druid/indexer/v1/tasks?state=running&datasource={ds}", overlord=True)
    return tasks


# -- backfill --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backfill:
    datasource: str
    db: Path  # the DuckDB store it went through
    args: list[str]  # its `dredge replay` command line


@pytest.fixture(scope="module")
def backfilled(druid: DruidCluster, druid_logs: Path, store: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Backfill:
    """``replay --sink druid`` into a fresh datasource; staging "auto": Druid is on this
    machine, so local files next to the database (hours here are ~5 MB, over the inline cap)."""
    tmp = tmp_path_factory.mktemp("druid-backfill")
    ds = druid.datasource("backfill")
    args = replay_args(druid_logs, tmp / "b.duckdb", "--sink", "druid", "--druid-url", ROUTER,
                       "--druid-datasource", ds, "--json")
    assert main(args) == 0
    assert druid_totals(druid, ds) == duckdb_totals(store)  # queryable when replay returns
    return Backfill(ds, tmp / "b.duckdb", args)


def test_backfill_equals_duckdb_and_never_counts_twice(
        druid: DruidCluster, backfilled: Backfill, store: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    want = duckdb_totals(store)
    assert sum(v[2] for v in want.values()) > 19_000 and len(want) > 10_000
    capsys.readouterr()
    # the same files again: nothing new is stored, nothing is pushed, nothing doubles
    assert main(backfilled.args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] == 0 and out["druid"]["hours"] == 0
    assert out["druid"]["staging"] == f"local:{backfilled.db}.druid-staging"
    # every hour pushed again (REPLACE): the same totals
    assert main(["druid", "backfill", "--db", str(backfilled.db),
                 "--druid-url", ROUTER, "--druid-datasource", backfilled.datasource]) == 0
    assert druid_totals(druid, backfilled.datasource) == want


@pytest.mark.parametrize("query", [
    ["top"],
    ["top", "--by", "src_az,action", "--metric", "flows", "--limit", "50"],
    ["top", "--by", "protocol,traffic_path,flow_direction", "--where", "protocol=6|17",
     "--where", "action!=REJECT", "--from", "2026-11-25T00:30Z", "--to", "2026-11-25T01:10Z"],
    ["top", "--by", "protocol,action", "--where", "protocol=tcp|UDP", "--where", "action=reject|Accept"],
    ["timeseries", "--interval", "7m", "--by", "action"],
    ["timeseries", "--interval", "10m", "--where", "src_app=web|api"],
    ["cross-az", "--limit", "100"],
    ["cross-az", "--by", "src_region,dst_region", "--az-price", "0.013"],
])
@pytest.mark.parametrize("fmt", [["--json"], [], ["--format", "csv"]], ids=["json", "table", "csv"])
def test_query_backend_druid_prints_what_duckdb_prints(
        backfilled: Backfill, store: Path, query: list[str], fmt: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["query", *query, *fmt, "--db", str(store)]) == 0
    want = capsys.readouterr().out
    assert main(["query", *query, *fmt, "--backend", "druid", "--druid-url", ROUTER,
                 "--druid-datasource", backfilled.datasource]) == 0
    got = capsys.readouterr().out
    assert want.count("\n") >= 3 and got == want


def test_backfill_druid_away_then_back(druid: DruidCluster, druid_logs: Path, store: Path,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Druid unreachable: replay stores the files, reports the failure (exit 1), keeps the
    hours pending; the next run pushes them. Inline staging: one small file per hour."""
    ds = druid.datasource("away")
    logs = tmp_path / "logs"
    logs.mkdir()
    picked = sorted((druid_logs / "logs").rglob("*.parquet"))[:2]
    for i, f in enumerate(picked):
        (logs / f"{i}.parquet").write_bytes(f.read_bytes())
    db = tmp_path / "a.duckdb"
    base = ["replay", str(logs), "--index", str(druid_logs / "owners.jsonl"), "--cidrs",
            str(druid_logs / "networks.csv"), "--db", str(db), "--no-progress", "--json",
            "--druid-datasource", ds, "--druid-staging", "inline"]
    capsys.readouterr()
    failed = metric("dredge_sink_rows_total", sink="druid", outcome="failed")
    t0 = time.monotonic()
    assert main([*base, "--sink", "druid", "--druid-url", "http://127.0.0.1:9"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] == len(picked) and out["druid"]["pending"] >= 1
    assert "unreachable" in out["druid"]["error"]
    assert time.monotonic() - t0 < 120  # bounded retries
    # reported in metrics: rows not stored, hours pending
    assert metric("dredge_sink_rows_total", sink="druid", outcome="failed") > failed
    assert metric("dredge_sink_pending_intervals", sink="druid") == out["druid"]["pending"]
    assert main([*base, "--sink", "druid", "--druid-url", ROUTER]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] == 0 and out["druid"]["pending"] == 0 and out["druid"]["hours"] >= 1
    assert druid_totals(druid, ds) == duckdb_totals(db)
    assert metric("dredge_sink_pending_intervals", sink="druid") == 0


def test_backfill_survives_the_indexer_stopped_mid_task(
        druid: DruidCluster, druid_logs: Path, store: Path, tmp_path: Path) -> None:
    """The Indexer is stopped while the REPLACE task runs: the task fails, Dredge submits it
    again, it waits until the Indexer is back and succeeds; the totals equal the store's."""
    ds = druid.datasource("restart")
    args = replay_args(druid_logs, tmp_path / "r.duckdb", "--sink", "druid", "--druid-url", ROUTER,
                       "--druid-datasource", ds, "--druid-staging", f"local:{tmp_path / 'stage'}")
    rc: list[int] = []
    worker = threading.Thread(target=lambda: rc.append(main(args)), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not running_tasks(druid, ds):
            time.sleep(0.2)
        assert running_tasks(druid, ds), "the REPLACE task never ran"
        stop_indexer()
    finally:
        start_indexer()
        worker.join(600)
    assert rc == [0]
    assert druid_totals(druid, ds) == duckdb_totals(store)


# -- S3 staging: Dredge writes objects to the moto server druid.sh runs, Druid reads them ------


@pytest.fixture(scope="module")
def s3(druid: DruidCluster) -> Any:
    """A boto3 client on the S3 endpoint the local Druid's druid-s3-extensions reads."""
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=S3, region_name="us-east-1",
                          aws_access_key_id="dredge", aws_secret_access_key="dredge",
                          config=Config(connect_timeout=3, retries={"max_attempts": 1}))
    try:
        client.list_buckets()
    except Exception as exc:
        service_unavailable(f"S3 (moto) not answering at {S3}: {exc} (make druid-up)")
    return client


def test_backfill_through_s3_staging_equals_duckdb_and_leaves_no_objects(
        druid: DruidCluster, s3: Any, druid_logs: Path, store: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``replay --sink druid --druid-staging s3://bucket/prefix/`` (endpoint from [sink.druid]
    s3_endpoint_url of --config): each hour a gzipped object, read by Druid's `s3` input source;
    Druid's totals equal the store's, and the objects are gone afterwards."""
    ds = druid.datasource("s3")
    bucket = f"dredge-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dredge")  # moto takes any
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dredge")
    cfg = tmp_path / "dredge.toml"
    cfg.write_text(f'[sink.druid]\ns3_endpoint_url = "{S3}"\n')
    staging = f"s3://{bucket}/backfill/"
    capsys.readouterr()
    assert main(replay_args(druid_logs, tmp_path / "s.duckdb", "--sink", "druid", "--config", str(cfg),
                            "--druid-url", ROUTER, "--druid-datasource", ds,
                            "--druid-staging", staging, "--json")) == 0
    out = json.loads(capsys.readouterr().out)["druid"]
    assert out["staging"] == staging and out["pending"] == 0 and out["hours"] == 2
    assert out["bytes"] > 4 << 20  # more than inline staging would take
    assert druid_totals(druid, ds) == duckdb_totals(store)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_backfill_s3_staging_into_a_missing_bucket_is_a_clear_error(
        druid: DruidCluster, s3: Any, druid_logs: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket that does not exist (endpoint from AWS_ENDPOINT_URL_S3): one clear error,
    exit 1, the files stored and their hours pending; Druid is never asked."""
    ds = druid.datasource("s3missing")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dredge")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dredge")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", S3)
    missing = f"dredge-missing-{uuid.uuid4().hex[:8]}"
    capsys.readouterr()
    t0 = time.monotonic()
    assert main(replay_args(druid_logs, tmp_path / "m.duckdb", "--sink", "druid", "--druid-url",
                            ROUTER, "--druid-datasource", ds, "--druid-staging",
                            f"s3://{missing}/x/", "--json")) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] > 0 and out["druid"]["pending"] == 2
    assert f"bucket '{missing}' does not exist" in out["druid"]["error"]
    assert time.monotonic() - t0 < 60
    assert running_tasks(druid, ds) == []


# -- the live path: dredge run -> output stream -> Kinesis supervisor ---------------------------------------


def test_daemon_streams_through_the_supervisor_and_survives_an_indexer_restart(
        druid: DruidCluster, moto: MotoServer, sample: Sample, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`dredge run` with [sink.kinesis_out] and [sink.druid]: the output stream is created and
    the supervisor submitted by `dredge druid init --config --create-stream` (stream and Druid
    from the daemon's file); the daemon reads a
    Kinesis stream (moto), publishes each flush to the output stream (kinesis-local), stores
    and checkpoints it. The Indexer is stopped while the daemon runs and started again; Druid
    ends with exactly the daemon's store totals, which equal the lines put."""
    import boto3

    from tests.integration.streams import (
        PutLog,
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

    ds = druid.datasource("stream")
    tag = uuid.uuid4().hex[:8]
    in_stream, out_stream = f"druid-in-{tag}", f"dredge-test-{tag}"
    out = boto3.client("kinesis", endpoint_url=KINESIS, region_name="us-east-1",
                       aws_access_key_id="dredge", aws_secret_access_key="dredge")
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, in_stream, 2)
    rng = random.Random(3)
    log = PutLog()
    half = len(sample.lines) // 2
    put_payloads(kin, in_stream, encode_mixed(sample.lines[:half], rng), rng, log)
    db = tmp_path / "daemon.duckdb"
    cfg = write_config(tmp_path / "dredge.toml", stream=in_stream, db=db, sample=sample,
                       worker_id="to-druid", extra=f"""
[sink.kinesis_out]
stream = "{out_stream}"
region = "us-east-1"
endpoint_url = "{KINESIS}"

[sink.druid]
url = "{ROUTER}"
datasource = "{ds}"
""")
    t0 = time.monotonic()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dredge")  # kinesis-local takes any
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dredge")
    assert main(["druid", "init", "--config", str(cfg), "--task-count", "1",
                 "--create-stream", "2"]) == 0
    assert f"stream       {out_stream} created (2 shard(s))" in capsys.readouterr().out
    table = f"leases-{in_stream}-{in_stream}"
    worker = Worker(cfg, moto.env(), tmp_path / "worker.log").start()
    stopped = False
    try:
        worker.wait_started()
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), log.last_sequence()), 120,
                 "the first half to be stored", alive=worker.check_alive)
        stopped = True
        stop_indexer()  # what the daemon publishes now waits in the stream
        put_payloads(kin, in_stream, encode_mixed(sample.lines[half:], rng), rng, log)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), log.last_sequence()), 120,
                 "the second half to be stored", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
        if stopped:
            start_indexer()
    assert rc == 0, worker.tail()
    assert store_totals(db).as_tuple() == line_totals(log.lines()).as_tuple()
    want = duckdb_totals(db)
    t1 = time.monotonic()
    try:
        got = wait_totals(druid, ds, want)
        print(f"daemon: init, stream, Indexer restart {t1 - t0:.1f} s; then queryable in "
              f"{time.monotonic() - t1:.1f} s")
        assert summed(got) == summed(want)
        assert got == want
        capsys.readouterr()
        assert main(["druid", "status", "--json", "--config", str(cfg)]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["supervisor"]["state"] == "RUNNING"
        assert status["supervisor"]["stream"] == out_stream
    finally:
        druid.terminate_supervisor(ds)
        deadline = time.monotonic() + 120  # let its task publish and leave the Indexer free
        while time.monotonic() < deadline and running_tasks(druid, ds):
            time.sleep(1)
        out.delete_stream(StreamName=out_stream, EnforceConsumerDeletion=True)


# -- the dashboards' API over Druid ----------------------------------------------------------


@pytest.mark.parametrize("query", [
    ["top"],
    ["top", "--by", "src_az,action", "--metric", "flows", "--limit", "50"],
    ["timeseries", "--interval", "10m", "--by", "action"],
    ["cross-az", "--limit", "100"],
])
def test_serve_backend_druid_answers_what_dredge_query_prints(
        backfilled: Backfill, query: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`dredge serve --backend druid`: /api/query over the real Druid equals `dredge query
    --backend druid --json`, and /api/meta names the backend and the data's time range."""
    from tests.integration.test_serve import api, as_records, cli_json, http, params_of, start_serve

    target = ["--druid-url", ROUTER, "--druid-datasource", backfilled.datasource]
    served = start_serve(["--backend", "druid", *target], tmp_path / "serve.log")
    try:
        want = cli_json(capsys, *query, "--backend", "druid", *target)
        assert len(want) >= 3
        assert as_records(api(served.url, **params_of(query))) == want
        status, body = http("GET", served.url + "/api/meta")
        meta = json.loads(body)
        assert status == 200 and meta["backend"] == "druid"
        assert meta["time_range"]["from"].startswith("2026-11-25T00:")
    finally:
        assert served.stop() == 0, served.log.read_text()
