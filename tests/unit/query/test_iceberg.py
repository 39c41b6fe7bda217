"""The Iceberg query backend's pieces: what is pushed down to Iceberg, and the DuckDB SQL run
over rows registered as ``flows``."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from dredge.query.iceberg import run_on, spec_filter
from dredge.query.spec import Filter, QuerySpec
from dredge.sinks.iceberg.reading import FLOWS_US


def test_pushdown_has_the_time_range_and_positive_filters() -> None:
    spec = QuerySpec(kind="top", start=1764028800, end=1764032400,
                     filters=(Filter.parse("protocol=6|17"), Filter.parse("src_app=api"),
                              Filter.parse("dst_app!=db")))
    text = repr(spec_filter(spec))
    assert "GreaterThanOrEqual(term=Reference(name='window_start'), literal=LongLiteral(1764028800000000))" in text
    assert "LessThan(term=Reference(name='window_start'), literal=LongLiteral(1764032400000000))" in text
    assert "In(Reference(name='protocol'), {" in text  # integers, not text
    assert "LongLiteral(6)" in text and "LongLiteral(17)" in text
    assert "EqualTo(term=Reference(name='src_app'), literal=literal('api'))" in text
    assert "dst_app" not in text  # a negation is left to the SQL
    assert "AlwaysTrue" in repr(spec_filter(QuerySpec(kind="top")))


def test_run_on_answers_from_the_rows() -> None:
    n = 4
    cols = {f.name: pa.array(["x"] * n) for f in FLOWS_US if f.type == pa.string()}
    cols.update(window_start=pa.array([datetime(2026, 11, 25, 0, m) for m in range(n)],
                                      pa.timestamp("us")),
                src_app=pa.array(["api", "api", "web", "web"]),
                protocol=pa.array([6] * n, pa.int16()), traffic_path=pa.array([1] * n, pa.int8()),
                port=pa.array([443] * n, pa.int32()),
                bytes=pa.array([10, 20, 30, 5], pa.int64()),
                packets=pa.array([1] * n, pa.int64()), flows=pa.array([1] * n, pa.int64()))
    rows = pa.table({f.name: cols[f.name] for f in FLOWS_US}, schema=FLOWS_US)
    out = run_on(rows, QuerySpec(kind="top", by=("src_app",)))
    assert out.to_pydict()["src_app"] == ["web", "api"]
    assert out.to_pydict()["bytes"] == [35, 30]
    ts = run_on(rows, QuerySpec(kind="timeseries", interval_s=120, start=None))
    assert ts.column("bytes").to_pylist() == [30, 35]
