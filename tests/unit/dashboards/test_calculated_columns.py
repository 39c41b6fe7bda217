"""The Superset datasets' calculated columns are SQL that Druid runs: evaluated here in
DuckDB (the same CASE grammar) over edge values, so a malformed expression fails before a
dashboard meets Druid."""

from __future__ import annotations

import duckdb

from dredge.dashboards.schema import port_name, traffic_path_name
from dredge.query.ports import label


def _evaluate(expression: str, column: str, values: list[int | None]) -> list[str]:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE t (i INTEGER, {column} INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
        return [r[0] for r in con.execute(f"SELECT {expression} FROM t ORDER BY i").fetchall()]
    finally:
        con.close()


def test_port_name_reads_as_dredge_query_shows_it() -> None:
    expr = port_name().expression
    assert expr is not None
    got = _evaluate(expr, "port", [None, 0, 443, 22, 12345])
    assert got == ["none", "ephemeral", label(443), label(22), "12345"]
    assert got[2] == "443 (https)"


def test_traffic_path_name_reads_words() -> None:
    expr = traffic_path_name().expression
    assert expr is not None
    assert _evaluate(expr, "traffic_path", [None, 1, 8, 99]) == [
        "not recorded", "1 same VPC", "8 internet gateway (Nitro)", "not recorded"]
