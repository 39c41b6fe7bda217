"""`dredge replay --sink iceberg` into the ledger table on moto S3 (SQL and Glue catalogs):
totals equal the independent computation; a second replay adds nothing; a replay killed
midway and run again ends exact; a crash between the flows commit and the side record is
repaired (catch-up) and expiring the flows snapshots then loses no digest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from dredge.cli import main
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.files import FILES_PROPERTY, IcebergFileSink, files_table
from dredge.sinks.iceberg.positions import (
    POSITIONS_PROPERTY,
    carried_forward,
    summary_with_positions,
)
from dredge.sinks.iceberg.table import open_table
from tests.integration.reference import reference_totals
from tests.integration.test_iceberg_daemon import iceberg_section

pytestmark = pytest.mark.integration

Totals = dict[tuple[str, str, int], tuple[int, int, int]]


def table_totals(catalog: dict[str, str]) -> Totals:
    """As reference.dredge_totals, from the Iceberg table: (src, dst, minute) -> (bytes, packets, flows)."""
    data = open_table(IcebergConfig(catalog=catalog), create=False).scan().to_arrow()
    out: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in data.group_by(["src_app", "dst_app", "window_start"]).aggregate(
            [("bytes", "sum"), ("packets", "sum"), ("flows", "sum")]).to_pylist():
        acc = out[(r["src_app"], r["dst_app"], int(r["window_start"].timestamp()))]
        acc[0], acc[1], acc[2] = r["bytes_sum"], r["packets_sum"], r["flows_sum"]
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def args(logs: Path, config: Path, *extra: str) -> list[str]:
    return ["replay", str(logs / "logs"), "--index", str(logs / "owners.jsonl"), "--cidrs",
            str(logs / "networks.csv"), "--sink", "iceberg", "--config", str(config),
            "--db", str(config.with_suffix(".duckdb")), "--no-progress", *extra]


def write(tmp_path: Path, catalog: dict[str, str]) -> Path:
    cfg = tmp_path / "dredge.toml"
    cfg.write_text(iceberg_section(catalog))
    return cfg


def test_replay_exact_then_twice_adds_nothing(hour_logs: Path, tmp_path: Path, iceberg_catalog: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, iceberg_catalog)
    assert main(args(hour_logs, cfg, "--commit-files", "4")) == 0
    want = reference_totals(hour_logs)
    assert table_totals(iceberg_catalog) == want
    assert not cfg.with_suffix(".duckdb").exists()  # iceberg instead of DuckDB
    capsys.readouterr()
    assert main(args(hour_logs, cfg, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] == 0 and out["already_ingested"] == out["files"] > 0
    assert table_totals(iceberg_catalog) == want
    ice = IcebergConfig(catalog=iceberg_catalog)
    files = files_table(ice, open_table(ice)).scan().to_arrow()
    assert files.num_rows == out["files"] and len(set(files.column("hash").to_pylist())) == files.num_rows


def test_bad_usage_is_exit_2(hour_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    assert main(["replay", str(hour_logs / "logs"), "--sink", "iceberg", "--config", str(cfg),
                 "--index", str(hour_logs / "owners.jsonl")]) == 2
    assert "dredge: error: sink.iceberg:" in capsys.readouterr().err
    assert main(["replay", str(hour_logs / "logs"), "--sink", "iceberg",
                 "--index", str(hour_logs / "owners.jsonl")]) == 2
    assert "--sink iceberg needs a dredge TOML file" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("iceberg_catalog", ["sql"], indirect=True)
def test_killed_midway_then_rerun_is_exact(hour_logs: Path, tmp_path: Path, iceberg_catalog: dict[str, str]) -> None:
    cfg = write(tmp_path, iceberg_catalog)
    rng = random.Random()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(2):  # kill twice at random moments (between commits, during one, mid-file)
        proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", *args(hour_logs, cfg, "--commit-files", "1")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(3.0, 7.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert main(args(hour_logs, cfg)) == 0
    assert table_totals(iceberg_catalog) == reference_totals(hour_logs)


@pytest.mark.parametrize("iceberg_catalog", ["sql"], indirect=True)
def test_crash_between_the_two_commits_is_repaired(tmp_path: Path, iceberg_catalog: dict[str, str]) -> None:
    ice = IcebergConfig(catalog=iceberg_catalog)
    flows = open_table(ice)
    # a daemon's commit first: replay must carry its positions forward
    flows.append(open_table(ice).scan().to_arrow(), snapshot_properties=summary_with_positions(
        None, {("s", "shard-0"): ("42", 0)}))
    flows.refresh()
    # what a replay killed after its flows commit leaves: digests in the summary, no side row
    props = carried_forward(flows)
    props[FILES_PROPERTY] = json.dumps([["d1" * 32, "a.log.gz"], ["d2" * 32, "b.log.gz"]])
    flows.append(open_table(ice).scan().to_arrow(), snapshot_properties=props)
    sink = IcebergFileSink(ice)  # catch-up at open
    assert sink.is_ingested("d1" * 32) and sink.is_ingested("d2" * 32) and not sink.is_ingested("d3" * 32)
    flows.refresh()
    # expire every flows snapshot but the current: the digests live on in the side table
    from datetime import datetime, timedelta

    flows.maintenance.expire_snapshots().older_than(datetime.now() + timedelta(seconds=1)).commit()
    flows.refresh()
    assert len(flows.snapshots()) == 1
    again = IcebergFileSink(ice)
    assert again.is_ingested("d1" * 32) and again.is_ingested("d2" * 32)
    assert POSITIONS_PROPERTY in flows.current_snapshot().summary.additional_properties
