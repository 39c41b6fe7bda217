"""`dredge index lookup` / `stats` from a saved live state and from files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from dredge.cli import main
from dredge.index.live import IndexManager
from dredge.index.providers.config import IndexConfig


def _state(tmp_path: Path) -> Path:
    path = tmp_path / "index.arrow"
    m = IndexManager(IndexConfig(state_path=str(path)), clock=lambda: 10_000.0)
    s = m.sink("events/file/x", "events")
    s.submit(["10.0.1.5", "10.0.1.5", "10.0.1.5"], [100, 200, 300],
             [("api", "api-prod", None, None, None, None, None, "ecs-task"), None,
              ("web", None, None, None, None, None, None, "instance")])
    m.sink("cidr/n.csv", "cidr").set_networks(pa.table({"cidr": ["10.0.0.0/8"], "app": ["corp"]}))
    m.rebuild_now()
    m.save_now()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(list(argv)) == 0
    out: dict = orjson.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return out


def test_lookup_and_history_from_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _state(tmp_path)
    out = run(capsys, "index", "lookup", "10.0.1.5", "--at", "150", "--state", str(path))
    assert out["owner"]["app"] == "api" and out["owner"]["cluster"] == "api-prod"
    assert [(h["start"], h["end"], h["app"]) for h in out["history"]] == \
        [(100, 200, "api"), (300, None, "web")]
    out = run(capsys, "index", "lookup", "10.0.1.5", "--at", "250", "--state", str(path))
    assert out["owner"]["app"] == "corp"  # between owners: the CIDR map answers


def test_stats_from_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "index", "stats", "--state", str(_state(tmp_path)))
    assert out["intervals"] == 2 and out["history_events"] == 3 and out["networks"] == 1
    assert out["memory_bytes"] > 0 and out["state_file"]["bytes"] > 0
    src = out["sources"]["events/file/x"]
    assert src["accepted"] == 3 and src["provider"] == "events" and src["updated_at"] == 10_000.0


def test_lookup_from_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "o.jsonl").write_text(
        '{"ip": "10.0.1.5", "start": 200, "end": null, "app": "db"}\n'
        '{"ip": "10.0.1.5", "start": 100, "end": 200, "app": "api"}\n'
        '{"ip": "10.0.1.6", "start": 100, "end": 200, "app": "x"}\n')
    out = run(capsys, "index", "lookup", "10.0.1.5", "--at", "150", "--index", str(tmp_path / "o.jsonl"))
    assert out["owner"]["app"] == "api"
    assert [(h["start"], h["app"]) for h in out["history"]] == [(100, "api"), (200, "db")]
    out = run(capsys, "index", "stats", "--index", str(tmp_path / "o.jsonl"))
    assert out["intervals"] == 3 and out["addresses"] == 2
