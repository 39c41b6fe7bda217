"""A file with more rolled-up rows than ``spill_rows`` is stored in parts inside one
transaction: the same totals as in one piece, nothing stored if the file fails midway, and
the store free again afterwards."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dredge import pipeline
from dredge.index.loaders import load_index
from dredge.replay import ReplayConfig, ReplaySummary, replay
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

GROUPED = """SELECT window_start, src_app, dst_app, src_az, dst_az, protocol, action,
                    SUM(bytes), SUM(packets), SUM(flows) FROM flows GROUP BY ALL ORDER BY ALL"""


def run(sample: Path, db: Path, config: ReplayConfig) -> ReplaySummary:
    snap, _ = load_index([sample / "owners.jsonl"], [sample / "networks.csv"])
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        return replay([str(sample / "logs")], snap, sink, DeadLetters(None), config)


def table(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("workers", [1, 2])
def test_spilled_files_store_the_same_totals(small_sample: Path, tmp_path: Path, workers: int) -> None:
    whole = run(small_sample, tmp_path / "w.duckdb", ReplayConfig(workers=workers, spill_rows=0))
    parts = run(small_sample, tmp_path / "p.duckdb",
                ReplayConfig(workers=workers, spill_rows=50, chunk_bytes=8192))
    assert table(tmp_path / "p.duckdb", GROUPED) == table(tmp_path / "w.duckdb", GROUPED)
    assert (parts.stored, parts.files, parts.truncated, parts.counts) == \
        (whole.stored, whole.files, whole.truncated, whole.counts)
    assert parts.rows > whole.rows  # a window's key may stand in two parts of a file
    stored_rows = table(tmp_path / "p.duckdb", "SELECT SUM(rows), COUNT(*) FROM ingested")[0]
    assert stored_rows == (parts.rows, parts.stored)
    assert table(tmp_path / "p.duckdb", "SELECT COUNT(*) FROM flow_facts")[0][0] == parts.rows
    again = run(small_sample, tmp_path / "p.duckdb", ReplayConfig(workers=workers, spill_rows=50))
    assert again.stored == 0 and again.already == parts.stored


def test_a_file_failing_after_a_spill_stores_nothing(small_sample: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.Enricher.add_columns
    calls = {"n": 0}

    def failing(self: pipeline.Enricher, cols: object, counts: object) -> None:
        real(self, cols, counts)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline.Enricher, "add_columns", failing)
    db = tmp_path / "f.duckdb"
    with pytest.raises(RuntimeError, match="disk on fire"):
        run(small_sample, db, ReplayConfig(workers=1, spill_rows=20, chunk_bytes=4096))
    monkeypatch.setattr(pipeline.Enricher, "add_columns", real)
    # whatever was committed before belongs to whole files; the failed file left nothing
    files = table(db, "SELECT COUNT(*), COALESCE(SUM(rows), 0) FROM ingested")[0]
    assert table(db, "SELECT COUNT(*) FROM flow_facts")[0][0] == files[1]
    summary = run(small_sample, db, ReplayConfig(workers=1, spill_rows=20))  # the store is usable
    assert summary.stored + summary.already == summary.files - summary.failed
