"""Housekeeping of the ledger on loopback (SQLite catalog, warehouse on moto S3): compaction
keeps every total and the source positions and loses no concurrent append; expiry keeps the
newest snapshots and the positions; orphan files are deleted and live files kept."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dredge.cli import main
from dredge.sinks.iceberg import housekeeping
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.housekeeping import HousekeepingConfig, maintain, referenced
from dredge.sinks.iceberg.positions import committed_positions
from dredge.sinks.iceberg.reading import hour_files
from dredge.sinks.iceberg.table import open_table
from tests.integration.iceberg import append, ledger_config, synthetic_rows, table_totals, toml_of

pytestmark = pytest.mark.integration

ONLY_COMPACT = {"expire": False, "orphans": False}


def files_per_hour(table: Any) -> dict[int, int]:
    table.refresh()
    snapshot = table.current_snapshot()
    return {h: len(f) for h, f in hour_files(table, snapshot.snapshot_id).items()}


@pytest.fixture
def config(iceberg_catalog: dict[str, str]) -> IcebergConfig:
    return ledger_config(iceberg_catalog)


@pytest.fixture
def table(config: IcebergConfig) -> Any:
    table = open_table(config)
    append(table, synthetic_rows(4_000, hours=2), commits=10)
    return table


def test_compaction_keeps_totals_and_positions(table: Any) -> None:
    want, positions = table_totals(table), committed_positions(table)
    assert files_per_hour(table) == {h: 10 for h in files_per_hour(table)}
    assert len(files_per_hour(table)) == 2

    report = maintain(table, HousekeepingConfig(min_files=4, **ONLY_COMPACT))
    assert len(report.compacted) == 2 and report.conflicts == 0
    assert set(files_per_hour(table).values()) == {1}
    assert table_totals(table) == want
    assert committed_positions(table) == positions
    assert table.current_snapshot().summary.operation.value == "overwrite"

    again = maintain(table, HousekeepingConfig(min_files=4, **ONLY_COMPACT))  # nothing to do
    assert again.compacted == {} and table_totals(table) == want


def test_compaction_loses_no_concurrent_append(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker commits between the compaction's read and its commit: the compaction is
    refused, reads again and the appended rows (and their position) survive."""
    other = _same(table)
    late = synthetic_rows(300, hours=2, seed=7)
    real = housekeeping.to_table_arrow
    fired: list[bool] = []

    def read_then_someone_commits(rows: pa.Table) -> pa.Table:
        out = real(rows)
        if not fired:
            fired.append(True)
            append(other, late, shard="shard-other")  # a real commit through another handle
        return out

    monkeypatch.setattr(housekeeping, "to_table_arrow", read_then_someone_commits)
    report = maintain(table, HousekeepingConfig(min_files=4, **ONLY_COMPACT))
    assert fired and report.conflicts >= 1 and len(report.compacted) == 2
    other.refresh()
    want_rows = 4_000 + 300
    assert table.scan().to_arrow().num_rows == want_rows
    assert ("stream", "shard-other") in committed_positions(table)
    assert ("stream", "shard-0") in committed_positions(table)
    assert sum(v[2] for v in table_totals(table).values()) == (
        int(pa.compute.sum(synthetic_rows(4_000, hours=2).column("flows")).as_py())
        + int(pa.compute.sum(late.column("flows")).as_py()))


def _same(table: Any) -> Any:
    """Another handle on the same table (as another worker has): same catalog, own metadata."""
    return table.catalog.load_table(table.name())


def test_expiry_and_orphans(table: Any) -> None:
    want, positions = table_totals(table), committed_positions(table)
    maintain(table, HousekeepingConfig(min_files=4, **ONLY_COMPACT))
    table.refresh()
    n = len(table.metadata.snapshots)
    assert n == 12

    report = maintain(table, HousekeepingConfig(keep_snapshots=3, expire_after_s=0,
                                                compact=False, orphans=False))
    table.refresh()
    assert len(report.expired) == n - 3 and len(table.metadata.snapshots) == 3
    assert committed_positions(table) == positions and table_totals(table) == want
    # the third newest (the last append) still holds the files compaction replaced: keep 1
    assert len(maintain(table, HousekeepingConfig(keep_snapshots=1, expire_after_s=0,
                                                  compact=False, orphans=False)).expired) == 2

    # an orphan of a failed commit: a data file no snapshot references
    stray = f"{table.location()}/data/window_start_hour=2026-11-25-00/failed-commit.parquet"
    with table.io.new_output(stray).create() as f:
        f.write(b"PAR1 not referenced")
    sibling = f"{table.location()}_files/data/another-table.parquet"  # <table>_files: replay's
    with table.io.new_output(sibling).create() as f:
        f.write(b"PAR1 another table's")
    young = maintain(table, HousekeepingConfig(compact=False, expire=False))
    assert young.orphans == []  # every file is younger than orphan_age_s (3 days)

    later = time.time() + 2 * 3600  # now everything is 2 h old
    report = maintain(table, HousekeepingConfig(compact=False, expire=False,
                                                orphan_age_s=3600), now=later)
    deleted = {p.rsplit("/", 1)[-1] for p in report.orphans}
    assert "failed-commit.parquet" in deleted
    # the 20 data files compaction replaced, freed by expiry, are gone too; live ones stay
    assert sum(p.endswith(".parquet") for p in report.orphans) == 21
    table.refresh()
    assert not table.io.new_input(stray).exists()
    assert table.io.new_input(sibling).exists()
    for path in referenced(table):
        scheme = "s3://" if table.location().startswith("s3://") else ""
        assert table.io.new_input(scheme + path).exists(), path
    assert table_totals(table) == want and committed_positions(table) == positions


def test_maintain_command(table: Any, config: IcebergConfig, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "dredge.toml"
    toml.write_text(toml_of(config))
    want = table_totals(table)
    assert main(["iceberg", "maintain", "--config", str(toml), "--min-files", "4",
                 "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["compacted_hours"] == 2 and set(files_per_hour(table).values()) == {10}
    assert main(["iceberg", "maintain", "--config", str(toml), "--min-files", "4"]) == 0
    assert "compaction   2 hour(s): 20 files -> 2" in capsys.readouterr().out
    assert table_totals(table) == want
    assert main(["iceberg", "maintain", "--config", str(toml), "--min-files", "1"]) == 2
    assert "min_files" in capsys.readouterr().err


def test_expiry_records_replayed_files_first(config: IcebergConfig) -> None:
    """A replay killed between its commit (digests in the snapshot summary) and the side
    table's record: expiry first records the digests, then drops the snapshot."""
    from dredge.sinks.iceberg.files import FILES_PROPERTY, files_table
    from dredge.sinks.iceberg.table import to_table_arrow

    table = open_table(config)
    files = files_table(config, table)
    table.append(to_table_arrow(synthetic_rows(100)),
                 snapshot_properties={FILES_PROPERTY: json.dumps([["abc123", "f.log.gz"]])})
    append(table, synthetic_rows(100, seed=2), commits=3)
    report = maintain(table, HousekeepingConfig(keep_snapshots=1, expire_after_s=0,
                                                compact=False, orphans=False))
    assert len(report.expired) == 3
    files.refresh()
    assert "abc123" in files.scan().to_arrow().column("hash").to_pylist()
