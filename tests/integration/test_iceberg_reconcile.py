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
from tests.integration.iceberg import append, s3_config, store_rows, table_totals
from tests.integration.samples import replay_args

pytestmark = [pytest.mark.integration, pytest.mark.druid]

NOW = 1893456000.0  # 2030-01-01: every generated hour is long closed


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


def test_reconcile_makes_druid_equal_the_ledger(druid: DruidCluster, moto: MotoServer,
                                               stores: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    exact, doubled = stores
    config = s3_config(moto, tmp_path)
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
    toml.write_text(_toml(config.catalog, druid_config))
    assert main(["druid", "reconcile", "--config", str(toml), "--grace", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["reconciled"], out["unchanged"]) == (1, 1)
    assert druid_totals(druid, ds) == want


def _toml(catalog: dict[str, str], druid: DruidConfig) -> str:
    lines = ["[[streams]]", 'name = "flows"', "[sink.druid]", f'url = "{druid.url}"',
             f'datasource = "{druid.datasource}"', f'staging = "{druid.staging}"',
             "[sink.iceberg]", "[sink.iceberg.catalog]"]
    lines += [f'"{k}" = "{v}"' for k, v in catalog.items()]
    return "\n".join(lines) + "\n"
