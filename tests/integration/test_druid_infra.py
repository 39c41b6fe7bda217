"""A real Apache Druid (``make druid-up``) ingests Dredge-shaped rows: Kinesis and SQL.

The cluster and kinesis-local are started outside pytest (infra/druid/druid.sh, ports from the
same environment variables); these tests only talk to them. The steps live in
infra/druid/smoke.py, which also runs on its own: ``.venv/bin/python infra/druid/smoke.py``.
"""

from __future__ import annotations

import pytest

from tests.integration.druid import DruidCluster, load_smoke

pytestmark = [pytest.mark.integration, pytest.mark.druid]

smoke = load_smoke()


def test_kinesis_supervisor_ingests_what_was_put(druid: DruidCluster) -> None:
    result = smoke.run_kinesis(druid.endpoints, n=100, timeout=180)

    expected = result["expected"]
    assert result["got"] == {"rows": result["got"].get("rows"), **expected}, result
    # 200 rows over 5 minutes x 3 app pairs roll up to 15 Druid rows (queryGranularity minute).
    assert result["got"]["rows"] == 15, result
    assert result["supervisor_state"] == "RUNNING", result
    # Terminating the supervisor publishes the segment; the Historical then serves the same sums.
    assert not result["tasks_killed"], result
    assert set(result["tasks"].values()) == {"SUCCESS"}, result
    assert [
        (s["is_published"], s["is_available"], s["is_realtime"]) for s in result["segments"]
    ] == [(1, 1, 0)], result
    assert result["got_after_handoff"] == result["got"], result


def test_sql_based_ingestion_replaces_a_datasource(druid: DruidCluster) -> None:
    result = smoke.run_msq(druid.endpoints, n=100, timeout=300)

    assert result["state"] == "SUCCESS", result
    assert result["got"] == {"rows": 15, **result["expected"]}, result
