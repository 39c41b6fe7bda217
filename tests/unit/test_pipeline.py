"""pipeline.py: one file through parse -> enrich -> roll up, compared with an independent
computation (tests/integration/reference.py: DuckDB's readers, ``ipaddress``, a SQL range join)."""

from __future__ import annotations

import gzip
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc
import pytest

from dredge.errors import ConfigError
from dredge.flowlog.columns import RecordCounts
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.index.loaders import load_index
from dredge.index.snapshot import IndexSnapshot
from dredge.pipeline import FileResult, PipelineConfig, count_records, process_file, window_ok
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.files import FileRef, sniff
from dredge.telemetry.metrics import REGISTRY
from tests.integration.reference import reference_totals
from tests.unit.conftest import manifest

Totals = dict[tuple[str, str, int], tuple[int, int, int]]


@pytest.fixture(scope="module")
def snapshot(small_sample: Path) -> IndexSnapshot:
    snap, _ = load_index([small_sample / "owners.jsonl"], [small_sample / "networks.csv"])
    return snap


def entry(sample: Path, **match: Any) -> dict[str, Any]:
    """The first file of the manifest whose fields match (``nat_rows`` > 0 with nat=True)."""
    nat = match.pop("nat", False)
    for f in manifest(sample)["file_list"]:
        if all(f[k] == v for k, v in match.items()) and (not nat or f["nat_rows"] > 0):
            return f
    raise AssertionError(f"no file like {match} in the sample")


def run(sample: Path, f: dict[str, Any], snapshot: IndexSnapshot, tmp_path: Path,
        window_s: int = 60) -> tuple[FileResult, list[dict[str, Any]]]:
    path = sample / f["path"]
    ref = FileRef(str(path), path.stat().st_size)
    dead = DeadLetters(tmp_path / "dead.jsonl")
    try:
        result = process_file(ref, sniff(ref), snapshot, window_s, DEFAULT_FORMAT, dead, 4096)
    finally:
        dead.close()
    letters = ([orjson.loads(x) for x in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
               if (tmp_path / "dead.jsonl").exists() else [])
    return result, letters


def totals(result: FileResult) -> Totals:
    assert result.rows is not None
    t = result.rows.materialize()
    starts = pc.cast(pc.cast(t.column("window_start"), "timestamp[s]"), "int64").to_pylist()
    out: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for s, d, w, b, p, n in zip(t.column("src_app").to_pylist(), t.column("dst_app").to_pylist(),
                                starts, t.column("bytes").to_pylist(),
                                t.column("packets").to_pylist(), t.column("flows").to_pylist(),
                                strict=True):
        acc = out[(s, d, w)]
        acc[0] += b
        acc[1] += p
        acc[2] += n
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def reference_for(sample: Path, f: dict[str, Any], tmp_path: Path) -> Totals:
    """The independent computation over this one file."""
    ref = tmp_path / "ref"
    (ref / "logs").mkdir(parents=True)
    shutil.copy(sample / f["path"], ref / "logs" / Path(f["path"]).name)
    for name in ("owners.jsonl", "networks.csv"):
        shutil.copy(sample / name, ref / name)
    return reference_totals(ref)


@pytest.mark.parametrize("kind", ["text", "parquet"])
def test_file_rows_equal_the_independent_computation(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path, kind: str) -> None:
    f = entry(small_sample, role="hourly", kind=kind)
    result, _ = run(small_sample, f, snapshot, tmp_path)
    assert result.error is None and not result.truncated
    assert result.counts.data == f["flows"]
    assert result.counts.nodata == f["nodata"] and result.counts.skipdata == f["skipdata"]
    got = totals(result)
    assert sum(v[2] for v in got.values()) == f["flows"] > 100
    assert got == reference_for(small_sample, f, tmp_path)
    assert result.join.lookups == 2 * f["flows"]


def test_a_parquet_file_of_many_row_groups_is_read_whole(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    """The reader goes a row group at a time (memory): every group, in order, none twice."""
    import pyarrow.parquet as pq

    f = entry(small_sample, role="hourly", kind="parquet")
    table = pq.read_table(small_sample / f["path"])
    split = tmp_path / "split" / Path(f["path"]).name
    split.parent.mkdir()
    pq.write_table(table, split, row_group_size=97)
    assert pq.ParquetFile(split).metadata.num_row_groups == -(-table.num_rows // 97) > 3
    whole, _ = run(small_sample, f, snapshot, tmp_path / "a")
    (tmp_path / "b").mkdir()
    result, _ = run(split.parent, {"path": split.name}, snapshot, tmp_path / "b")
    assert result.error is None and result.counts.data == whole.counts.data == f["flows"]
    assert totals(result) == totals(whole) == reference_for(small_sample, f, tmp_path)


def test_nat_rows_use_the_packet_addresses(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    f = entry(small_sample, role="hourly", kind="text", nat=True)
    result, _ = run(small_sample, f, snapshot, tmp_path)
    assert totals(result) == reference_for(small_sample, f, tmp_path)


def test_a_wider_window_adds_the_same_flows_into_fewer_rows(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    f = entry(small_sample, role="hourly", kind="text")
    minute, _ = run(small_sample, f, snapshot, tmp_path / "a")
    hour, _ = run(small_sample, f, snapshot, tmp_path / "b", window_s=3600)
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (s, d, _), v in totals(minute).items():
        by_pair[(s, d)] = [a + b for a, b in zip(by_pair[(s, d)], v, strict=True)]
    assert {(s, d): list(v) for (s, d, _), v in totals(hour).items()} == dict(by_pair)
    assert {w for _, _, w in totals(hour)} == {f["hour_start"]}


def test_malformed_lines_are_dead_lettered_with_their_line(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    files = [f for f in manifest(small_sample)["file_list"] if f["malformed"] and f["kind"] == "text"]
    assert files, "the sample has malformed lines"
    f = files[0]
    result, letters = run(small_sample, f, snapshot, tmp_path)
    assert result.counts.malformed == f["malformed"] == len(letters)
    text = gzip.decompress((small_sample / f["path"]).read_bytes()).decode().split("\n")
    for d in letters:
        assert d["file"] == str(small_sample / f["path"])
        assert text[d["line"] - 1] == d["text"]  # 1-based, the header line counted
        assert d["reason"]
    assert totals(result) == reference_for(small_sample, f, tmp_path)  # the rest is kept


def test_truncated_file_keeps_the_complete_records(
        small_sample: Path, snapshot: IndexSnapshot, tmp_path: Path) -> None:
    m = manifest(small_sample)
    f = entry(small_sample, role="truncated")
    result, letters = run(small_sample, f, snapshot, tmp_path)
    assert result.truncated and result.warning and result.error is None
    assert result.counts.data == m["flows_in_truncated"] > 0
    assert [d["reason"] for d in letters if d["reason"] == "truncated_line"] == ["truncated_line"]
    assert totals(result) == reference_for(small_sample, f, tmp_path)


def test_empty_and_unreadable_files(small_sample: Path, snapshot: IndexSnapshot,
                                    tmp_path: Path) -> None:
    empty, _ = run(small_sample, entry(small_sample, role="empty"), snapshot, tmp_path)
    assert empty.error is None and empty.rows is not None and empty.rows.num_rows == 0
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    ref = FileRef(str(bad), bad.stat().st_size)
    dead = DeadLetters(None)
    result = process_file(ref, "parquet", snapshot, 60, DEFAULT_FORMAT, dead)
    assert result.rows is None and result.error and str(bad) in result.error


def test_count_records_adds_to_the_metric() -> None:
    def value(outcome: str) -> float:
        return REGISTRY.get_sample_value(
            "dredge_parse_records_total", {"source": "unit", "outcome": outcome}) or 0.0

    before = {o: value(o) for o in ("ok", "nodata", "skipdata", "malformed")}
    count_records("unit", RecordCounts(records=10, data=7, nodata=2, skipdata=1, malformed=3))
    count_records("unit", RecordCounts(records=1, data=1))
    assert {o: value(o) - before[o] for o in before} == {
        "ok": 8, "nodata": 2, "skipdata": 1, "malformed": 3}


@pytest.mark.parametrize(("window", "ok"), [
    (60, True), (1, True), (30, True), (900, True), (86400, True), (7200, True),
    (7, False), (0, False), (-60, False), (90, True), (45, True), (77, False)])
def test_window_rule(window: int, ok: bool) -> None:
    # a positive number of seconds dividing a day, or whole minutes
    assert window_ok(window) is ok
    if ok:
        PipelineConfig(window_s=window).validate()
    else:
        with pytest.raises(ConfigError, match="window_s"):
            PipelineConfig(window_s=window).validate()


@pytest.mark.parametrize(("field", "value"), [
    ("flush_interval_s", 0.0), ("sink_retry_max_s", -1.0), ("queue_batches", 0),
    ("shutdown_flush_attempts", 0), ("holdback_s", 3601.0), ("holdback_max_rows", 0)])
def test_pipeline_config_names_the_bad_key(field: str, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        PipelineConfig(**{field: value}).validate()
    assert err.value.field == field
