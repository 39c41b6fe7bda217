"""End to end: generate sample data, replay it, compare with an independent computation;
replay twice; kill a replay midway and finish it; the store stays exact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dredge.cli import main
from tests.integration.reference import dredge_totals, reference_totals
from tests.integration.samples import replay_args

pytestmark = pytest.mark.integration


def test_totals_equal_independent_computation(replay_logs: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    assert main(replay_args(replay_logs, db)) == 0
    got = dredge_totals(db)
    want = reference_totals(replay_logs)
    assert sum(v[2] for v in want.values()) > 50_000  # the data set is not trivially small
    assert len({k[0] for k in want}) > 10  # many apps
    assert got == want
    con = duckdb.connect(str(db), read_only=True)
    # the data carries the features the test is meant to cover
    apps = {r[0] for r in con.execute("SELECT DISTINCT src_app FROM flows").fetchall()}
    assert {"unknown", "internet"} <= apps
    assert con.execute("SELECT count(*) FROM flows WHERE action = 'REJECT'").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM flows WHERE src_az <> dst_az").fetchone()[0] > 0
    ing = con.execute("SELECT count(*), sum(malformed), bool_or(truncated), sum(nodata) FROM ingested").fetchone()
    con.close()
    assert ing[0] == len([p for p in (replay_logs / "logs").rglob("*") if p.is_file()])
    assert ing[1] > 0 and ing[2] is True and ing[3] > 0
    dead = (tmp_path / "d.deadletter.jsonl").read_text().splitlines()
    assert len(dead) == ing[1]


def test_replay_twice_adds_nothing(replay_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "d.duckdb"
    assert main(replay_args(replay_logs, db, "--workers", "1")) == 0
    first = dredge_totals(db)
    capsys.readouterr()
    assert main(replay_args(replay_logs, db, "--json")) == 0
    out = capsys.readouterr().out
    assert '"stored": 0' in out and '"flows": 0' in out
    assert dredge_totals(db) == first


@pytest.mark.slow
def test_killed_midway_then_rerun_gives_clean_totals(replay_logs: Path, tmp_path: Path) -> None:
    clean_db = tmp_path / "clean.duckdb"
    assert main(replay_args(replay_logs, clean_db)) == 0
    clean = dredge_totals(clean_db)
    rng = random.Random(5)
    for attempt in range(3):
        db = tmp_path / f"crash{attempt}.duckdb"
        # commit every 3 files so a kill lands between commits, during one, or mid-file
        cmd = [sys.executable, "-m", "dredge.cli", *replay_args(replay_logs, db, "--commit-files", "3")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        time.sleep(rng.uniform(2.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert main(replay_args(replay_logs, db)) == 0
        assert dredge_totals(db) == clean, f"attempt {attempt}"
