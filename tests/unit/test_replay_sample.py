"""A tiny generated sample of every kind of file (v2 and v5 gzip text, Parquet, IPv6,
malformed lines, a truncated file) replayed into an in-memory store; and replay's read-ahead
setting is validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from dredge.errors import ConfigError
from dredge.generate import generate
from dredge.index.loaders import load_index
from dredge.replay import ReplayConfig, replay
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink


def test_a_sample_of_every_kind_replays(tmp_path: Path) -> None:
    generate(tmp_path, flows=600, seed=1, hours=1.0)
    snapshot, _ = load_index([tmp_path / "owners.jsonl"], [tmp_path / "networks.csv"])
    with DuckDBSink(DuckDBConfig(path=":memory:")) as sink:
        summary = replay([str(tmp_path / "logs")], snapshot, sink, DeadLetters(None),
                         ReplayConfig())
    assert summary.failed == 0 and summary.stored == summary.files >= 3
    assert summary.counts.data > 500 and summary.rows > 0 and summary.truncated == 1


def test_read_ahead_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="read_ahead"):
        ReplayConfig(read_ahead=-1).validate()
