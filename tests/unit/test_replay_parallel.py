"""Replay in parallel (files on threads, text inflated ahead of the parse on a thread of its
own) stores exactly what the serial replay stores, and dead-letters the same lines."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import duckdb
import orjson
import pytest

from dredge.errors import SourceError
from dredge.index.loaders import load_index
from dredge.replay import ReplayConfig, default_read_ahead, default_workers, replay
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sources.files import FileRef, ReadState, text_chunks


def stored(sample: Path, db: Path, config: ReplayConfig) -> tuple[list[tuple[object, ...]], list[bytes]]:
    snap, _ = load_index([sample / "owners.jsonl"], [sample / "networks.csv"])
    dl = db.with_suffix(".dead.jsonl")
    dead = DeadLetters(dl)
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        summary = replay([str(sample / "logs")], snap, sink, dead, config)
    dead.close()
    assert summary.stored == summary.files - summary.failed and summary.counts.data > 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT * FROM flows ORDER BY ALL").fetchall()
    return rows, sorted(dl.read_bytes().splitlines()) if dl.exists() else []


def test_parallel_replay_equals_serial(small_sample: Path, tmp_path: Path) -> None:
    serial = stored(small_sample, tmp_path / "s.duckdb", ReplayConfig(workers=1, read_ahead=0))
    ahead = stored(small_sample, tmp_path / "a.duckdb", ReplayConfig(workers=1, read_ahead=1))
    both = stored(small_sample, tmp_path / "p.duckdb", ReplayConfig(workers=2, read_ahead=2,
                                                                     chunk_bytes=8192))
    assert serial[0] and serial[1]  # rows and dead letters: the sample has malformed lines
    assert ahead == serial
    # smaller chunks cut the same text elsewhere: the same rows, the same dead letters
    assert both[0] == serial[0]
    assert [orjson.loads(x) for x in both[1]] == [orjson.loads(x) for x in serial[1]]


LINES = b"".join(b"2 123 eni-1 10.0.0.%d 10.0.1.1 443 %d 6 1 40 1 2 ACCEPT OK\n" % (i % 250, i)
                 for i in range(30_000))


@pytest.mark.parametrize("name, data, kind", [
    ("plain.log", LINES, "text"),
    ("whole.log.gz", gzip.compress(LINES), "gzip"),
    ("cut.log.gz", gzip.compress(LINES)[:40_000], "gzip"),
    ("corrupt.log.gz", gzip.compress(LINES)[:30_000] + b"\x00" * 64 + gzip.compress(LINES)[30_064:], "gzip"),
])
def test_read_ahead_hands_out_the_same_chunks_and_state(tmp_path: Path, name: str, data: bytes,
                                                        kind: str) -> None:
    p = tmp_path / name
    p.write_bytes(data)
    ref = FileRef(str(p), len(data))
    plain_state, ahead_state = ReadState(), ReadState()
    plain = list(text_chunks(ref, kind, plain_state, 8192))
    ahead = list(text_chunks(ref, kind, ahead_state, 8192, read_ahead=2))
    assert ahead == plain and len(plain) > 3
    assert ahead_state == plain_state


def test_read_ahead_raises_in_the_caller_and_stops_when_left(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        list(text_chunks(FileRef(str(tmp_path / "missing.log"), 1), "text", ReadState(), read_ahead=2))
    p = tmp_path / "x.log"
    p.write_bytes(LINES)
    chunks = text_chunks(FileRef(str(p), len(LINES)), "text", ReadState(), 4096, read_ahead=1)
    assert next(chunks).endswith(b"\n")
    chunks.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_default_workers_is_the_cores_this_process_may_use() -> None:
    import os

    assert default_workers() == min(len(os.sched_getaffinity(0)), 8)


def test_read_ahead_only_while_the_workers_leave_a_core_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    import dredge.replay

    monkeypatch.setattr(dredge.replay, "default_workers", lambda: 2)
    assert (default_read_ahead(1), default_read_ahead(2), default_read_ahead(4)) == (2, 0, 0)
    monkeypatch.setattr(dredge.replay, "default_workers", lambda: 1)
    assert default_read_ahead(1) == 0
