"""Query specs: SQL shapes, filters as parameters, validation errors name the option."""

from __future__ import annotations

import pytest

from dredge.errors import ConfigError
from dredge.query.spec import DRUID, DUCKDB, Filter, QuerySpec, parse_duration, parse_time


def test_parse_time_forms() -> None:
    assert parse_time("2026-11-25T10:00Z") == 1795600800
    assert parse_time("2026-11-25T10:00:00+00:00") == 1795600800
    assert parse_time("2026-11-25 10:00") == 1795600800  # naive means UTC
    assert parse_time("1795600800") == 1795600800
    with pytest.raises(ConfigError, match="not a time"):
        parse_time("yesterday")


def test_parse_duration() -> None:
    assert [parse_duration(x) for x in ("60", "5m", "1h", "2d", "30s")] == [60, 300, 3600, 172800, 30]
    with pytest.raises(ConfigError, match="interval"):
        parse_duration("5 minutes")


def test_filters() -> None:
    f = Filter.parse("src_app=api|web")
    assert f == Filter("src_app", ("api", "web"), False)
    assert Filter.parse("action!=REJECT").negate
    with pytest.raises(ConfigError, match="unknown dimension"):
        Filter.parse("src_ip=10.0.0.1")
    with pytest.raises(ConfigError, match="where"):
        Filter.parse("nonsense")


def test_top_sql_uses_parameters_not_values() -> None:
    spec = QuerySpec("top", by=("src_app", "dst_app"), filters=(Filter.parse("src_region=us-east-1'; drop"),),
                     start=1795600800, end=1795604400, limit=5)
    sql, params = spec.sql(DUCKDB)
    assert "drop" not in sql and params == ["us-east-1'; drop"]
    assert "window_start >= TIMESTAMP '2026-11-25 10:00:00'" in sql
    assert "GROUP BY src_app, dst_app" in sql and "LIMIT 5" in sql


def test_druid_dialect_uses_time_column() -> None:
    sql, _ = QuerySpec("timeseries", by=(), interval_s=300).sql(DRUID)
    assert "TIME_FLOOR(__time, 'PT300S', TIMESTAMP '2000-01-03 00:00:00')" in sql
    assert '"dredge_flows"' in sql


def test_druid_orders_nulls_last_like_duckdb() -> None:
    sql, _ = QuerySpec("top", by=("src_app", "action")).sql(DRUID)
    assert "ORDER BY bytes DESC, src_app IS NULL, src_app, action IS NULL, action" in sql
    sql, _ = QuerySpec("top", by=("src_app", "action")).sql(DUCKDB)
    assert "ORDER BY bytes DESC, src_app, action LIMIT" in sql


def test_validation() -> None:
    with pytest.raises(ConfigError, match="by"):
        QuerySpec("top", by=("nope",)).sql()
    with pytest.raises(ConfigError, match="to"):
        QuerySpec("top", start=10, end=5).sql()
    with pytest.raises(ConfigError, match="query"):
        QuerySpec("bottom").sql()
