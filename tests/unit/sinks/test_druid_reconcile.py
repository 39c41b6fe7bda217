"""The reconcile's statement: the backfill's REPLACE with the mark chosen by each row's hour."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dredge.enrich.rollup import DIMENSIONS
from dredge.sinks.druid import DruidConfig
from dredge.sinks.druid_backfill import replace_statement
from dredge.sinks.druid_reconcile import MARK_COLUMN, DruidReconcile

H = 1764028800  # 2025-11-25T00:00Z


def test_replace_statement_takes_extra_dimensions() -> None:
    plain = replace_statement("ds", H, H + 7200, {"type": "inline", "data": ""})
    marked = replace_statement("ds", H, H + 7200, {"type": "inline", "data": ""},
                               [(MARK_COLUMN, "'abc'")])
    groups = len(DIMENSIONS)  # window_start + the other dimensions
    assert plain.endswith(f"GROUP BY {', '.join(str(i + 1) for i in range(groups))}\nPARTITIONED BY HOUR")
    assert f"'abc' AS \"{MARK_COLUMN}\", SUM(\"bytes\")" in marked
    assert f"GROUP BY {', '.join(str(i + 1) for i in range(groups + 1))}\n" in marked


def test_the_mark_is_each_hours_fingerprint(tmp_path: Path) -> None:
    reconcile = DruidReconcile(table=None,  # type: ignore[arg-type]  # not read here
                               config=DruidConfig(url="http://127.0.0.1:1", datasource="ds"),
                               staging_path=str(tmp_path / "x"))
    reconcile._marks = {H: "f0", H + 3600: "f1", H + 7200: "f2"}
    ((name, expr),) = reconcile._extra(H, H + 7200)
    assert name == MARK_COLUMN
    whens: list[Any] = re.findall(r"WHEN TIMESTAMP '([^']+)' THEN '(\w+)'", expr)
    assert whens == [("2025-11-25 00:00:00", "f0"), ("2025-11-25 01:00:00", "f1")]
    assert expr.startswith("CASE TIME_FLOOR(TIME_PARSE(\"window_start\"), 'PT1H') ")
    assert reconcile.staging == f"local:{tmp_path / 'x'}.druid-staging"  # a Druid on loopback
