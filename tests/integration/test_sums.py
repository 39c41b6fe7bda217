"""Sums that cannot wrap: byte and packet totals at and past what int64 holds.

One record is bounded (``flowlog.bounds``: at most 50 GB per second of a flow lasting at most
a day, 4.32e15 bytes), but nothing bounds how many records share a group, so about 2,135 such
records in one minute and pair pass 2**63 - 1. Each path saturates at the int64 maximum
instead: the rollup (compiled), DuckDB's SUM (HUGEINT, capped before the cast) and Druid's
``longSum`` (checked against a double sum and the stored values' sign, on a real Druid).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from dredge.cli import main
from dredge.enrich.rollup import INT64_MAX, _aggregate
from dredge.flowlog.bounds import MAX_BYTES_PER_S, MAX_DURATION_S, MAX_PACKET_BYTES
from dredge.query.spec import DRUID, Dialect, QuerySpec

pytestmark = pytest.mark.integration

START = 1764547200
MAX_RECORD_BYTES = MAX_BYTES_PER_S * (MAX_DURATION_S + 1)  # the most one record may carry
MAX_RECORD_PACKETS = 10**18  # packets have no upper bound of their own (bytes/65,535 below)
TO_WRAP = INT64_MAX // MAX_RECORD_BYTES + 1  # records at the bound that pass int64


def test_one_record_is_bounded_but_a_group_is_not() -> None:
    assert MAX_RECORD_BYTES == 4_320_050_000_000_000
    assert TO_WRAP == 2136  # a busy minute of one pair could hold that many records
    sums = np.full(TO_WRAP, MAX_RECORD_BYTES, np.int64)
    with np.errstate(over="ignore"):
        assert int(np.add.reduce(sums, dtype=np.int64)) < 0  # what a plain int64 sum stores


def test_rollup_saturates() -> None:
    n = TO_WRAP
    keys = np.zeros(n, np.uint64)
    b = np.full(n, MAX_RECORD_BYTES, np.int64)
    p = np.full(n, MAX_RECORD_PACKETS, np.int64)
    _, _, ob, op, of = _aggregate(keys, keys, b, p, np.ones(n, np.int64))
    assert (int(ob[0]), int(op[0]), int(of[0])) == (INT64_MAX, INT64_MAX, n)
    # just below: exact
    _, _, ob, _, _ = _aggregate(keys[:-1], keys[:-1], b[:-1], b[:-1], b[:-1])
    assert int(ob[0]) == (n - 1) * MAX_RECORD_BYTES


def flow_file(path: Path, records: int, src: str = "10.0.0.1") -> None:
    packets = math.ceil(MAX_RECORD_BYTES / MAX_PACKET_BYTES)
    line = (f"2 123456789012 eni-1 {src} 10.0.1.1 443 50000 6 {packets} {MAX_RECORD_BYTES} "
            f"{START} {START + MAX_DURATION_S} ACCEPT OK\n")
    path.write_text("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                    "packets bytes start end action log-status\n" + line * records)


def query_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["query", *args, "--json"]) == 0
    return [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_replay_and_duckdb_queries_saturate(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    flow_file(logs / "a.log", TO_WRAP)  # one group past int64 in one file: the rollup
    flow_file(logs / "b.log", 3, src="10.0.0.2")  # near-bound rows...
    flow_file(logs / "c.log", 3, src="10.0.0.3")  # ...that only DuckDB's SUM adds up
    owners = tmp_path / "owners.jsonl"
    owners.write_text("".join(
        orjson.dumps({"ip": ip, "start": 0, "app": app, "region": "us-east-1", "az": az}).decode()
        + "\n" for ip, app, az in [("10.0.0.1", "a", "use1-az1"), ("10.0.0.2", "b", "use1-az1"),
                                   ("10.0.0.3", "b", "use1-az1"), ("10.0.1.1", "db", "use1-az2")]))
    db = tmp_path / "s.duckdb"
    assert main(["replay", str(logs), "--index", str(owners), "--db", str(db), "--no-progress",
                 "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["flows"], out["malformed"]) == (TO_WRAP + 6, 0)  # at the bounds, all kept
    packets = math.ceil(MAX_RECORD_BYTES / MAX_PACKET_BYTES)
    rows = query_json(capsys, "top", "--by", "src_app", "--db", str(db))
    assert rows == [  # a: saturated by the rollup; b: two exact rows, summed by DuckDB
        {"src_app": "a", "bytes": INT64_MAX, "packets": TO_WRAP * packets, "flows": TO_WRAP},
        {"src_app": "b", "bytes": 6 * MAX_RECORD_BYTES, "packets": 6 * packets, "flows": 6}]
    # everything together: DuckDB's SUM of a saturated row and more, capped, not an error
    assert [r["bytes"] for r in query_json(capsys, "top", "--by", "dst_app", "--db", str(db))
            ] == [INT64_MAX]
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:  # no stored row is negative; the biggest is the saturated group
        assert con.execute("SELECT min(bytes), max(bytes) FROM flow_facts").fetchall() == [
            (3 * MAX_RECORD_BYTES, INT64_MAX)]
    finally:
        con.close()
    series = query_json(capsys, "timeseries", "--interval", "1h", "--db", str(db))
    assert [r["bytes"] for r in series] == [INT64_MAX]
    cost = query_json(capsys, "cross-az", "--by", "dst_app", "--db", str(db))
    assert [(r["crossing"], r["bytes"]) for r in cost] == [("cross-az", INT64_MAX)]
    assert cost[0]["cost_usd"] == pytest.approx(INT64_MAX / 1e9 * 0.01)


def druid_sum(druid_url: str, values: list[int]) -> int:
    """Dredge's Druid total over an inline table of stored ``bytes`` values."""
    from dredge.query.druid import _fetch, inline_parameters
    from dredge.sinks.druid import DruidConfig

    table = ("(SELECT * FROM (VALUES " + ", ".join(f"('a', {v}, 1, 1)" for v in values)
             + ") AS t(src_app, bytes, packets, flows))")
    spec = QuerySpec("top", by=("src_app",))
    sql, params = spec.sql(Dialect(DRUID.name, table, DRUID.time_col))
    rows = _fetch(DruidConfig(url=druid_url), inline_parameters(sql, params), 30.0)
    return int(rows[0][1])


def test_druid_long_sum_saturates(druid: object) -> None:
    from tests.integration.test_druid_sink import ROUTER

    assert druid_sum(ROUTER, [5, 7]) == 12
    assert druid_sum(ROUTER, [INT64_MAX - 10, 10]) == INT64_MAX  # exact at the edge
    assert druid_sum(ROUTER, [INT64_MAX, INT64_MAX, 5]) == INT64_MAX  # longSum alone: -1611
    assert druid_sum(ROUTER, [INT64_MAX - 5, 2**62, 2**62, 2**62]) == INT64_MAX
    assert druid_sum(ROUTER, [-1611, 5]) == INT64_MAX  # a value Druid's ingestion wrapped
