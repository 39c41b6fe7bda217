"""Replay from S3 (moto in server mode, over HTTP): the same totals as from local disk, and a
file already ingested from disk is recognized by content when it comes from S3."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from dredge.cli import main
from dredge.testing import MotoServer
from tests.integration.reference import dredge_totals

pytestmark = pytest.mark.integration


def test_replay_from_s3_equals_local(moto: MotoServer, hour_logs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="flow-logs")
    files = [p for p in (hour_logs / "logs").rglob("*") if p.is_file()]
    for p in files:
        s3.upload_file(str(p), "flow-logs", "prefix/" + str(p.relative_to(hour_logs / "logs")))
    common = ["--index", str(hour_logs / "owners.jsonl"), "--cidrs", str(hour_logs / "networks.csv"), "--no-progress"]
    s3_db, local_db = tmp_path / "s3.duckdb", tmp_path / "local.duckdb"
    assert main(["replay", "s3://flow-logs/prefix/AWSLogs/", "--db", str(s3_db), *common]) == 0
    assert main(["replay", str(hour_logs / "logs"), "--db", str(local_db), *common]) == 0
    s3_totals = dredge_totals(s3_db)
    assert s3_totals and s3_totals == dredge_totals(local_db)
    capsys.readouterr()
    assert main(["replay", str(hour_logs / "logs"), "--db", str(s3_db), "--json", *common]) == 0
    assert f'"already_ingested": {len(files)}' in capsys.readouterr().out


def test_missing_bucket_is_a_clear_error(moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "s3://no-such-bucket/x/", "--db", str(tmp_path / "d.duckdb"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dredge: error: cannot list s3://no-such-bucket/x/" in err and "Traceback" not in err
