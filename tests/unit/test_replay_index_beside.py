"""Replay reads and parses the first files while the index loads on a thread of its own
(``commands.index.load_snapshot_beside``): the join waits for it; its failure is the
replay's error, not a failure of each file, even when no file needed the index."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from dredge.errors import OwnerIndexError
from dredge.index.loaders import load_index
from dredge.index.snapshot import IndexSnapshot
from dredge.replay import ReplayConfig, replay
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from tests.unit.test_replay_parts import SUMS, query


def later(fn: object, started: threading.Event) -> Future[IndexSnapshot]:
    """A Future set by a thread only once the replay has started reading."""
    future: Future[IndexSnapshot] = Future()

    def run() -> None:
        started.wait(30)
        try:
            future.set_result(fn())  # type: ignore[operator]
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


@pytest.mark.parametrize("workers", [1, 2])
def test_a_snapshot_still_loading_gives_the_same_rows(small_sample: Path, tmp_path: Path,
                                                       workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def load() -> IndexSnapshot:
        return load_index([small_sample / "owners.jsonl"], [small_sample / "networks.csv"])[0]

    started = threading.Event()
    import dredge.replay as R

    sniff = R.sniff
    monkeypatch.setattr(R, "sniff", lambda ref: (started.set(), sniff(ref))[1])
    config = ReplayConfig(workers=workers)
    with DuckDBSink(DuckDBConfig(path=str(tmp_path / "now.duckdb"))) as sink:
        now = replay([str(small_sample / "logs")], load(), sink, DeadLetters(None), config)
    with DuckDBSink(DuckDBConfig(path=str(tmp_path / "later.duckdb"))) as sink:
        got = replay([str(small_sample / "logs")], later(load, started), sink, DeadLetters(None), config)
    assert started.is_set()
    assert (got.stored, got.failed, got.rows, got.counts) == (now.stored, now.failed, now.rows, now.counts)
    assert query(tmp_path / "later.duckdb", SUMS) == query(tmp_path / "now.duckdb", SUMS)


def test_a_failed_index_load_is_the_replays_error(small_sample: Path, tmp_path: Path) -> None:
    def fail() -> IndexSnapshot:
        raise OwnerIndexError("cannot read owners.jsonl: gone")

    started = threading.Event()
    started.set()
    dead = DeadLetters(tmp_path / "dl.jsonl")
    with DuckDBSink(DuckDBConfig(path=str(tmp_path / "s.duckdb"))) as sink:
        with pytest.raises(OwnerIndexError, match="gone"):
            replay([str(small_sample / "logs")], later(fail, started), sink, dead, ReplayConfig(workers=2))
        assert sink.query("SELECT count(*) AS n FROM ingested").column("n")[0].as_py() == 0
        # nothing to read at all: still the error
        (tmp_path / "empty").mkdir()
        with pytest.raises(OwnerIndexError, match="gone"):
            replay([str(tmp_path / "empty")], later(fail, started), sink, dead, ReplayConfig())
    dead.close()  # (lines parsed before the join waited may be dead-lettered: as when any
    # replay fails midway, the next run writes them again with the same origin)
