"""replay(): a folder of flow-log files into a real DuckDB store, once per file; compared
with an independent computation (tests/integration/reference.py)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from dredge.errors import ConfigError
from dredge.index.loaders import load_index
from dredge.index.snapshot import IndexSnapshot
from dredge.replay import Progress, ReplayConfig, _ordered_map, replay
from dredge.sinks.base import IngestRecord, Rows
from dredge.sinks.deadletter import DeadLetters
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from dredge.sources.files import FileRef
from tests.integration.reference import dredge_totals, reference_totals
from tests.unit.conftest import manifest


@pytest.fixture(scope="module")
def snapshot(small_sample: Path) -> IndexSnapshot:
    snap, _ = load_index([small_sample / "owners.jsonl"], [small_sample / "networks.csv"])
    return snap


@pytest.fixture(scope="module")
def reference(small_sample: Path) -> dict[tuple[str, str, int], tuple[int, int, int]]:
    return reference_totals(small_sample)


class CountingSink:
    """The real store, counting commits; ``refuse``: files some other run stored meanwhile."""

    def __init__(self, store: DuckDBSink, refuse: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.refuse = refuse
        self.commits: list[int] = []

    def is_ingested(self, digest: str) -> bool:
        return self.store.is_ingested(digest)

    def store_files(self, batch: list[tuple[Rows, IngestRecord]]) -> list[bool]:
        self.commits.append(len(batch))
        keep = [(r, rec) for r, rec in batch if Path(rec.path).name not in self.refuse]
        stored = iter(self.store.store_files(keep))
        return [False if Path(rec.path).name in self.refuse else next(stored) for _, rec in batch]


def run(sample: Path, snapshot: IndexSnapshot, db: Path, config: ReplayConfig,
        wrap: Any = None) -> tuple[Any, Path]:
    dl = db.with_suffix(".dead.jsonl")
    dead = DeadLetters(dl)
    with DuckDBSink(DuckDBConfig(path=str(db))) as store:
        sink = wrap(store) if wrap else store
        try:
            summary = replay([str(sample / "logs")], snapshot, sink, dead, config)
        finally:
            dead.close()
    return summary, dl


def test_store_equals_the_independent_computation(
        small_sample: Path, snapshot: IndexSnapshot, reference: Any, tmp_path: Path) -> None:
    m = manifest(small_sample)
    db = tmp_path / "d.duckdb"
    summary, dl = run(small_sample, snapshot, db, ReplayConfig(workers=2))
    assert dredge_totals(db) == reference
    assert summary.files == summary.stored == m["files"]
    assert (summary.already, summary.failed, summary.truncated) == (0, 0, 1)
    assert summary.counts.data == m["flows"] + m["flows_in_truncated"]
    assert (summary.counts.nodata, summary.counts.skipdata) == (m["nodata"], m["skipdata"])
    assert summary.counts.malformed == m["malformed"] + 1 > 1  # + the truncated file's cut line
    assert summary.lookups == 2 * summary.counts.data
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM flow_facts").fetchone() == (summary.rows,)
    finally:
        con.close()
    assert len(dl.read_bytes().splitlines()) == summary.counts.malformed
    assert summary.warnings and m["truncated"]["path"].split("/")[-1] in summary.warnings[0]
    out = summary.as_dict()
    assert out["flows"] == summary.counts.data and out["stored"] == m["files"]


def test_again_stores_nothing(small_sample: Path, snapshot: IndexSnapshot, reference: Any,
                              tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    run(small_sample, snapshot, db, ReplayConfig())
    summary, _ = run(small_sample, snapshot, db, ReplayConfig(workers=2))
    assert (summary.stored, summary.rows, summary.counts.data) == (0, 0, 0)
    assert summary.already == summary.files
    assert dredge_totals(db) == reference


def test_force_reads_every_file_again_and_replaces_its_rows(
        small_sample: Path, snapshot: IndexSnapshot, reference: Any, tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    first, _ = run(small_sample, snapshot, db, ReplayConfig())
    summary, _ = run(small_sample, snapshot, db, ReplayConfig(workers=2, force=True, commit_files=2))
    assert summary.stored == summary.replaced == summary.files and summary.already == 0
    assert (summary.rows, summary.counts.data) == (first.rows, first.counts.data)
    assert dredge_totals(db) == reference  # replaced, not added twice
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM flow_facts").fetchone() == (first.rows,)
        assert con.execute("SELECT count(*) FROM flow_facts WHERE file_id IS NULL").fetchone() == (0,)
    finally:
        con.close()


def test_commits_every_n_files_and_counts_refused_files(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    m = manifest(small_sample)
    refused = Path(next(f["path"] for f in m["file_list"] if f["kind"] == "parquet")).name
    sinks: list[CountingSink] = []

    def wrap(store: DuckDBSink) -> CountingSink:
        sinks.append(CountingSink(store, frozenset({refused})))
        return sinks[-1]

    summary, _ = run(small_sample, snapshot, tmp_path / "d.duckdb",
                     ReplayConfig(commit_files=2), wrap)
    assert sum(sinks[0].commits) == m["files"]
    assert max(sinks[0].commits) == 2 and len(sinks[0].commits) == (m["files"] + 1) // 2
    assert summary.already == 1 and summary.stored == m["files"] - 1


def test_an_unreadable_file_fails_alone(small_sample: Path, snapshot: IndexSnapshot,
                                        reference: Any, tmp_path: Path) -> None:
    copy = tmp_path / "sample"
    shutil.copytree(small_sample / "logs", copy / "logs")
    (copy / "logs" / "broken.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    db = tmp_path / "d.duckdb"
    summary, dl = run(copy, snapshot, db, ReplayConfig(workers=2))
    assert summary.failed == 1 and "broken.parquet" in summary.failures[0]
    assert summary.stored == summary.files - 1
    assert dredge_totals(db) == reference
    dead = [orjson.loads(x) for x in dl.read_bytes().splitlines()]
    assert [d["file"] for d in dead if d["reason"] == "unreadable_file"] == [
        str(copy / "logs" / "broken.parquet")]


@pytest.mark.parametrize(("field", "config"), [
    ("window", ReplayConfig(window_s=7)), ("workers", ReplayConfig(workers=0)),
    ("chunk_bytes", ReplayConfig(chunk_bytes=100))])
def test_bad_config_names_the_option(field: str, config: ReplayConfig) -> None:
    with pytest.raises(ConfigError) as err:
        config.validate()
    assert err.value.field == field


def test_ordered_map_keeps_input_order_and_bounds_work_in_flight() -> None:
    refs = [FileRef(f"f{i}", i) for i in range(20)]
    lock = threading.Lock()
    running = peak = 0

    def work(ref: FileRef) -> tuple[FileRef, str | None, None]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002 * (20 - ref.size))  # later files finish first
        with lock:
            running -= 1
        return ref, ref.path, None

    assert [r.path for r, _, _ in _ordered_map(work, refs, 3)] == [r.path for r in refs]
    assert 1 < peak <= 3
    assert [r.path for r, _, _ in _ordered_map(work, refs, 1)] == [r.path for r in refs]


def test_progress_is_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(4, enabled=False)
    bar.update(2, 100, force=True)
    bar.close()
    assert capsys.readouterr().err == ""
    bar = Progress(4, enabled=True)
    bar.update(2, 100, force=True)
    bar.close()
    assert "2/4 files" in capsys.readouterr().err
