"""Replay of large files in parts (``ReplayConfig.part_rows``): the same sums as whole files,
each file recorded once with all its rows, ``--force`` replacing all of them; and the writer
thread raising the store's errors in the replay's caller."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dredge.errors import SinkError
from dredge.index.loaders import load_index
from dredge.replay import ReplayConfig, ReplaySummary, replay
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

SUMS = ("SELECT window_start, src_app, src_subnet, dst_app, dst_subnet, protocol, action, "
        "sum(bytes)::BIGINT, sum(packets)::BIGINT, sum(flows)::BIGINT FROM flows GROUP BY ALL ORDER BY ALL")


def run(sample: Path, db: Path, config: ReplayConfig) -> ReplaySummary:
    snap, _ = load_index([sample / "owners.jsonl"], [sample / "networks.csv"])
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        return replay([str(sample / "logs")], snap, sink, DeadLetters(None), config)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("workers", [1, 2])
def test_parts_store_what_whole_files_store(small_sample: Path, tmp_path: Path, workers: int) -> None:
    whole = run(small_sample, tmp_path / "w.duckdb", ReplayConfig(workers=workers, part_rows=0,
                                                                  chunk_bytes=8192))
    parts = run(small_sample, tmp_path / "p.duckdb", ReplayConfig(workers=workers, part_rows=40,
                                                                  chunk_bytes=8192))
    # a group split between parts is two rows: more rows, the same sums
    assert parts.rows > whole.rows
    assert query(tmp_path / "p.duckdb", SUMS) == query(tmp_path / "w.duckdb", SUMS)
    assert (parts.stored, parts.counts, parts.failed) == (whole.stored, whole.counts, whole.failed)
    # each file's record counts all its rows, every part included; no table besides the store's
    per_file = query(tmp_path / "p.duckdb",
                     "SELECT i.rows, (SELECT count(*) FROM flow_facts f WHERE f.file_id = d.id) "
                     "FROM ingested i JOIN file_ids d USING (hash)")
    assert per_file and all(a == b for a, b in per_file)
    assert parts.rows == query(tmp_path / "p.duckdb", "SELECT count(*) FROM flow_facts")[0][0]
    assert {r[0] for r in query(tmp_path / "p.duckdb", "SELECT table_name FROM duckdb_tables()")} \
        == {r[0] for r in query(tmp_path / "w.duckdb", "SELECT table_name FROM duckdb_tables()")}


def test_parts_keep_the_rollup_settings(small_sample: Path, tmp_path: Path) -> None:
    """Every part rolls up with the replay's ``ephemeral_from``, not only the first."""
    ports = "SELECT port, sum(flows)::BIGINT FROM flows GROUP BY ALL ORDER BY ALL"
    whole = ReplayConfig(part_rows=0, chunk_bytes=8192, ephemeral_from=1024)
    parts = ReplayConfig(part_rows=40, chunk_bytes=8192, ephemeral_from=1024)
    run(small_sample, tmp_path / "w.duckdb", whole)
    run(small_sample, tmp_path / "p.duckdb", parts)
    got = query(tmp_path / "p.duckdb", ports)
    assert got == query(tmp_path / "w.duckdb", ports)
    assert all(p is None or p < 1024 for p, _ in got)


def test_force_replaces_every_part(small_sample: Path, tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    config = ReplayConfig(part_rows=40, chunk_bytes=8192)
    first = run(small_sample, db, config)
    before = query(db, SUMS)
    again = run(small_sample, db, ReplayConfig(part_rows=40, chunk_bytes=8192, force=True))
    assert again.replaced == first.stored > 0
    assert query(db, SUMS) == before
    assert query(db, "SELECT count(*) FROM flow_facts")[0][0] == first.rows


class FailingSink(DuckDBSink):
    def store_files(self, batch, stages=()):  # type: ignore[no-untyped-def]
        raise SinkError("disk full")


def test_a_store_error_is_raised_in_the_caller(small_sample: Path, tmp_path: Path) -> None:
    snap, _ = load_index([small_sample / "owners.jsonl"], [small_sample / "networks.csv"])
    with FailingSink(DuckDBConfig(path=str(tmp_path / "x.duckdb"))) as sink, \
            pytest.raises(SinkError, match="disk full"):
        replay([str(small_sample / "logs")], snap, sink, DeadLetters(None),
               ReplayConfig(workers=2, commit_files=1))


class CountingSink(DuckDBSink):
    batches: list[int]

    def store_files(self, batch, stages=()):  # type: ignore[no-untyped-def]
        self.batches.append(len(batch))
        return super().store_files(batch, stages)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_writer_commits_files_together_up_to_commit_files(small_sample: Path, tmp_path: Path,
                                                              workers: int) -> None:
    snap, _ = load_index([small_sample / "owners.jsonl"], [small_sample / "networks.csv"])
    sink = CountingSink(DuckDBConfig(path=str(tmp_path / "c.duckdb")))
    sink.batches = []
    with sink:
        summary = replay([str(small_sample / "logs")], snap, sink, DeadLetters(None),
                         ReplayConfig(workers=workers, commit_files=2, commit_seconds=3600))
    assert summary.stored == sum(sink.batches) >= 3
    # full groups of two while files keep coming; what is left goes at the end
    assert sink.batches[:-1] == [2] * (len(sink.batches) - 1) and sink.batches[-1] in (1, 2)

