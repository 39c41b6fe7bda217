"""``dredge druid reconcile`` against the real local Druid (``make druid-up``): Druid holding
duplicates (what the live path leaves after a crash between publish and commit) is made equal
to the Iceberg ledger, hour by hour; hours unchanged since are skipped, an hour the table
changed or the live stream touched is rebuilt.

The ledger: a SQLite catalog with its warehouse on moto S3. Druid's duplicates: the backfill
of a DuckDB store that holds one file twice (the same records, recompressed: another digest).
"""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dredge.cli import main
from dredge.sinks.druid import DruidConfig
from dredge.sinks.druid_backfill import DruidBackfill
from dredge.sinks.druid_reconcile import DruidReconcile
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sinks.iceberg.table import open_table
from dredge.testing import MotoServer
from tests.integration.druid import DruidCluster, druid_totals
from tests.integration.iceberg import append, ledger_config, store_rows, table_totals, toml_of
from tests.integration.samples import replay_args
from tests.integration.streams import Sample, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.druid]

NOW = 1893456000.0  # 2030-01-01: every generated hour is long closed
SQL_ONLY = pytest.mark.parametrize("iceberg_catalog", ["sql"], indirect=True)  # Druid is slow


@pytest.fixture(scope="module")
def stores(druid_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(exact, doubled): the logs replayed, and the logs plus one file again."""
    tmp = tmp_path_factory.mktemp("reconcile")
    exact, doubled = tmp / "exact.duckdb", tmp / "doubled.duckdb"
    assert main(replay_args(druid_logs, exact)) == 0
    assert main(replay_args(druid_logs, doubled)) == 0
    first = sorted((druid_logs / "logs").rglob("*.log.gz"))[0]
    again = tmp / "again" / first.name
    again.parent.mkdir()
    again.write_bytes(gzip.compress(gzip.decompress(first.read_bytes()), compresslevel=1))
    args = replay_args(druid_logs, doubled)
    args[1] = str(again.parent)
    assert main(args) == 0
    return exact, doubled


@SQL_ONLY
def test_reconcile_makes_druid_equal_the_ledger(druid: DruidCluster, iceberg_catalog: dict[str, str],
                                               stores: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    exact, doubled = stores
    config = ledger_config(iceberg_catalog)
    table = open_table(config)
    rows = store_rows(exact)
    append(table, rows, commits=3)
    want = table_totals(table)

    ds = druid.datasource("reconcile")
    druid_config = DruidConfig(url=druid.endpoints.router, datasource=ds,
                               staging=f"local:{tmp_path / 'staging'}")
    with DuckDBSink(DuckDBConfig(path=str(doubled))) as store:
        backfill = DruidBackfill(store, druid_config)
        assert backfill.mark_stored() == 2
        backfill.push()
        backfill.close()
    before = druid_totals(druid, ds)
    assert before != want and sum(v[2] for v in before.values()) > sum(v[2] for v in want.values())

    reconcile = DruidReconcile(table, druid_config)
    first = reconcile.run(now=NOW)
    assert (first.checked, first.reconciled, first.unchanged, first.stray) == (2, 2, 0, [])
    assert druid_totals(druid, ds) == want

    again = reconcile.run(now=NOW)  # nothing changed: no task
    assert (again.reconciled, again.unchanged, again.push.attempts) == (0, 2, 0)

    # a late commit into the first hour: only that hour is rebuilt
    first_hour = rows.column("window_start")[0].as_py().replace(minute=0, second=0)
    late = store_rows(exact, f"window_start < TIMESTAMP '{first_hour:%Y-%m-%d %H}:30:00'").slice(0, 50)
    append(table, late, shard="shard-late")
    want = table_totals(table)
    third = reconcile.run(now=NOW)
    assert (third.reconciled, third.unchanged) == (1, 1)
    assert druid_totals(druid, ds) == want

    # the live path publishes into a reconciled hour again (rows without the mark): rebuilt
    with DuckDBSink(DuckDBConfig(path=str(doubled))) as store:
        backfill = DruidBackfill(store, druid_config)
        backfill.mark_stored(int(first_hour.timestamp()) + 3600, None)
        backfill.push()
        backfill.close()
    assert druid_totals(druid, ds) != want

    # the command: --config names the table ([sink.iceberg]) and Druid ([sink.druid])
    toml = tmp_path / "dredge.toml"
    toml.write_text(toml_of(config, f'[sink.druid]\nurl = "{druid_config.url}"\n'
                            f'datasource = "{ds}"\nstaging = "{druid_config.staging}"\n'))
    assert main(["druid", "reconcile", "--config", str(toml), "--grace", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["reconciled"], out["unchanged"]) == (1, 1)
    assert druid_totals(druid, ds) == want

    # --every: a long-running reconcile picks up a later commit, stops on SIGTERM with 0
    proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", "druid", "reconcile", "--config",
                             str(toml), "--grace", "0", "--every", "2s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        append(table, late.slice(0, 10), shard="shard-later")
        want = table_totals(table)
        wait_for(lambda: druid_totals(druid, ds) == want, 180, "the loop to reconcile the hour")
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, output
    assert "druid_reconcile_done" in output


# -- the daemon: published to Druid, killed before its ledger commit, restarted ---------------


@SQL_ONLY
def test_daemon_killed_between_publish_and_commit_then_reconcile(
        druid: DruidCluster, moto: MotoServer, iceberg_catalog: dict[str, str], sample: Sample,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`dredge run` with [sink.kinesis_out] (Druid's supervisor reads it) and [sink.iceberg]:
    killed with SIGKILL after publishing every row and before its first ledger commit, then
    restarted: it reads the shards again from the table's (empty) positions, publishes again
    and commits. Druid counts the published rows twice; `dredge druid reconcile` makes it
    equal the table, which equals what was put."""
    import boto3

    from tests.integration import streams as st
    from tests.integration.test_daemon_publish import published_rows
    from tests.integration.test_druid_sink import ROUTER, running_tasks

    ds = druid.datasource("ledger")
    tag = uuid.uuid4().hex[:8]
    in_stream, out_stream = f"ledger-in-{tag}", f"dredge-ledger-{tag}"
    kinesis_local = druid.endpoints.kinesis
    out = boto3.client("kinesis", endpoint_url=kinesis_local, region_name="us-east-1",
                       aws_access_key_id="dredge", aws_secret_access_key="dredge")
    kin = st.kinesis(moto.endpoint)
    st.create_stream(kin, in_stream, 2)
    rng = random.Random(11)
    log = st.PutLog()
    st.put_payloads(kin, in_stream, st.encode_mixed(sample.lines, rng), rng, log)
    want_flows = st.line_totals(log.lines()).flows
    ledger = ledger_config(iceberg_catalog)
    db = tmp_path / "daemon.duckdb"

    def config(commit_interval_s: float, reconcile: str = "") -> Path:
        return st.write_config(tmp_path / "dredge.toml", stream=in_stream, db=db, sample=sample,
                            worker_id="ledger-1", extra=f"""
[sink.kinesis_out]
stream = "{out_stream}"
region = "us-east-1"
endpoint_url = "{kinesis_local}"

[sink.druid]
url = "{ROUTER}"
datasource = "{ds}"

[sink.iceberg]
table = "{ledger.table}"
commit_interval_s = {commit_interval_s}
{reconcile}
[sink.iceberg.catalog]
""" + "".join(f'"{k}" = "{v}"\n' for k, v in ledger.catalog.items()))

    def published_flows() -> int:
        return sum(int(r["flows"]) for r in published_rows(out, out_stream))

    cfg = config(3600.0)  # the first run never reaches its commit
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dredge")  # kinesis-local takes any
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dredge")
    assert main(["druid", "init", "--config", str(cfg), "--task-count", "1",
                 "--create-stream", "1"]) == 0
    try:
        worker = st.Worker(cfg, moto.env(), tmp_path / "worker.log").start().wait_started()
        try:
            wait_for(lambda: published_flows() >= want_flows, 120,
                     f"every flow to be published ({want_flows:,})", alive=worker.check_alive)
        finally:
            worker.kill9()
        table = open_table(ledger)
        assert table.current_snapshot() is None, "committed before the kill"

        worker = st.Worker(config(1.0), moto.env(), tmp_path / "worker.log").start().wait_started()
        try:
            wait_for(lambda: sum(v[2] for v in table_totals(table).values()) == want_flows, 120,
                     "the restarted worker to commit everything", alive=worker.check_alive)
        finally:
            assert worker.terminate() == 0, worker.tail()
        exact = table_totals(table)
        assert sum(v[2] for v in exact.values()) == want_flows
        published = published_flows()
        wait_for(lambda: sum(v[2] for v in _druid_or_empty(druid, ds).values()) == published,
                 300, "Druid to ingest what was published")
        print(f"published {published:,} flows for {want_flows:,} put")
        assert published > want_flows, "the restart published nothing twice: no duplicate to repair"
        assert druid_totals(druid, ds) != exact
    finally:
        druid.terminate_supervisor(ds)
        deadline = time.monotonic() + 120  # its task publishes and frees the hours' locks
        while time.monotonic() < deadline and running_tasks(druid, ds):
            time.sleep(1)
        out.delete_stream(StreamName=out_stream, EnforceConsumerDeletion=True)

    # the daemon reconciles by itself ([sink.iceberg] reconcile_every_s), hours closed at once
    cfg = config(1.0, "reconcile_every_s = 1\nreconcile_grace_s = 0")
    worker = st.Worker(cfg, moto.env(), tmp_path / "worker.log").start().wait_started()
    try:
        wait_for(lambda: _druid_or_empty(druid, ds) == exact, 300,
                 "the daemon to reconcile Druid with the ledger", alive=worker.check_alive)
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert druid_totals(druid, ds) == exact
    capsys.readouterr()  # and the command finds nothing left to do
    assert main(["druid", "reconcile", "--config", str(cfg), "--grace", "0", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["reconciled"] == 0 and done["unchanged"] == done["checked"] > 0, done


def _druid_or_empty(druid: DruidCluster, ds: str) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    try:
        return druid_totals(druid, ds)
    except Exception:  # not queryable yet
        return {}
