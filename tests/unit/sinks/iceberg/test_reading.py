"""Reading the ledger back: hour partitions of data files, their fingerprints, flows types
(a real SQL catalog in tmp_path, local warehouse)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from dredge.enrich.rollup import FLOWS_SCHEMA
from dredge.errors import ConfigError
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.housekeeping import HousekeepingConfig, expirable
from dredge.sinks.iceberg.reading import (
    FLOWS_US,
    as_flows,
    fingerprint,
    hour_files,
    scan_flows,
    time_filter,
)
from dredge.sinks.iceberg.table import open_table, to_table_arrow

H0 = int(datetime(2026, 11, 25).timestamp()) // 3600 * 3600


def rows(minutes: list[int], app: str = "api") -> pa.Table:
    n = len(minutes)
    cols: dict[str, pa.Array] = {}
    for f in FLOWS_SCHEMA:
        if f.name == "window_start":
            cols[f.name] = pa.array([(H0 + 60 * m) for m in minutes], pa.int64()).cast(f.type)
        elif f.type == pa.string():
            cols[f.name] = pa.array([app] * n)
        else:
            cols[f.name] = pa.array([1] * n).cast(f.type)
    return pa.table(cols, schema=FLOWS_SCHEMA)


def test_hours_files_fingerprints_and_scans(iceberg_config: IcebergConfig) -> None:
    table = open_table(iceberg_config)
    table.append(to_table_arrow(rows([0, 1, 61])))  # hours 0 and 1
    first = table.current_snapshot().snapshot_id
    table.append(to_table_arrow(rows([2])))  # hour 0 again
    files = hour_files(table, table.current_snapshot().snapshot_id)
    assert {h - H0: len(f) for h, f in files.items()} == {0: 2, 3600: 1}
    assert hour_files(table, table.current_snapshot().snapshot_id, H0 + 3600) == {
        H0 + 3600: files[H0 + 3600]}
    # the fingerprint: order-free, changed by a commit into the hour, not by one elsewhere
    assert fingerprint(files[H0]) == fingerprint(list(reversed(files[H0])))
    before = hour_files(table, first)
    assert fingerprint(before[H0]) != fingerprint(files[H0])
    assert fingerprint(before[H0 + 3600]) == fingerprint(files[H0 + 3600])
    one = scan_flows(table, time_filter(H0, H0 + 3600))
    assert one.schema == FLOWS_US and one.num_rows == 3
    assert scan_flows(table, time_filter(H0, H0 + 3600), first).num_rows == 2
    assert scan_flows(table, time_filter(None, None)).num_rows == 4


def test_as_flows_gives_the_store_types() -> None:
    zoned = to_table_arrow(rows([5]))  # the table's Arrow: timestamptz, int32 codes
    flows = as_flows(zoned)
    assert flows.schema == FLOWS_US
    assert flows.column("window_start")[0].as_py() == datetime(2026, 11, 25, 0, 5)


def test_expirable_keeps_the_newest_and_young(iceberg_config: IcebergConfig) -> None:
    table = open_table(iceberg_config)
    for m in range(5):
        table.append(to_table_arrow(rows([m])))
    snaps = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
    now = snaps[-1].timestamp_ms / 1000 + 10
    assert expirable(table, HousekeepingConfig(keep_snapshots=2, expire_after_s=0), now) == [
        s.snapshot_id for s in snaps[:3]]
    assert expirable(table, HousekeepingConfig(keep_snapshots=2, expire_after_s=3600), now) == []
    assert expirable(table, HousekeepingConfig(keep_snapshots=9, expire_after_s=0), now) == []


@pytest.mark.parametrize(("key", "value"), [
    ("min_files", 1), ("keep_snapshots", 0), ("max_attempts", 0), ("orphan_age_s", 60.0),
    ("expire_after_s", float("nan")), ("compact_after_s", -1.0)])
def test_housekeeping_settings_are_checked(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        HousekeepingConfig(**{key: value}).validate()  # type: ignore[arg-type]
    assert key in str(err.value)
