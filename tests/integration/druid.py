"""The local Apache Druid (``make druid-up``, infra/druid/druid.sh) as the integration tests see
it: its endpoints (infra/druid/smoke.py), a :class:`DruidAPI` that also drops, at the end of
the session, the datasources the tests made, and totals by (minute, src_app, dst_app) from
Druid and from a DuckDB store for the same input.

The cluster is started outside pytest; the ``druid`` fixture (conftest.py) skips the tests
that need it when it does not answer, and fails them in CI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb

from dredge.sinks.druid import DruidAPI, DruidConfig
from dredge.testing import service_unavailable

SMOKE = Path(__file__).resolve().parents[2] / "infra" / "druid" / "smoke.py"

Totals = dict[tuple[str, str, str], tuple[int, int, int]]


def load_smoke() -> ModuleType:
    """infra/druid/smoke.py (a script, not a package module), loaded once."""
    if "druid_smoke" in sys.modules:
        return sys.modules["druid_smoke"]
    spec = importlib.util.spec_from_file_location("druid_smoke", SMOKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class DruidCluster(DruidAPI):
    """The plain-http Router's API, with the cluster's ``endpoints`` (smoke.Endpoints: the
    Coordinator/Overlord, Broker, Router and kinesis-local) and the datasources the tests
    created, dropped by :meth:`drop_created`."""

    def __init__(self, endpoints: Any) -> None:
        super().__init__(DruidConfig(url=endpoints.router, max_attempts=2))
        self.endpoints = endpoints
        self.created: list[str] = []

    def client(self, config: DruidConfig) -> DruidAPI:
        """The same cluster through other connection settings (another port, TLS, a user);
        the test is skipped (failed in CI) when it does not answer so."""
        api = DruidAPI(config)
        why = api.healthy()
        if why:
            service_unavailable(f"{why} (make druid-up)")
        return api

    def datasource(self, kind: str) -> str:
        """A fresh datasource name, dropped at the end of the session."""
        name = f"dredge_test_{kind}_{uuid.uuid4().hex[:8]}"
        self.created.append(name)
        return name

    def drop_created(self) -> None:
        for ds in self.created:  # drop what the tests wrote: unused now, deleted by a kill task
            with contextlib.suppress(Exception):  # a supervisor a failed test left running
                self.terminate_supervisor(ds)
            try:
                self.request("DELETE", f"/druid/coordinator/v1/datasources/{ds}")
                self.request("POST", "/druid/indexer/v1/task", {
                    "type": "kill", "dataSource": ds, "interval": "2000-01-01/2100-01-01"},
                    overlord=True)
            except Exception as exc:  # cleanup only: a left-over datasource is harmless
                print(f"cleanup of {ds} failed: {exc}")
        self.created.clear()


def duckdb_totals(db: Path) -> Totals:
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone='UTC'")
    try:
        rows = con.execute(
            "SELECT strftime(date_trunc('minute', window_start), '%Y-%m-%dT%H:%M'), src_app,"
            " dst_app, sum(bytes)::BIGINT, sum(packets)::BIGINT, sum(flows)::BIGINT"
            " FROM flows GROUP BY 1, 2, 3").fetchall()
    finally:
        con.close()
    return {(t, s, d): (b, p, f) for t, s, d, b, p, f in rows}


def druid_totals(api: DruidAPI, ds: str) -> Totals:
    rows = api.sql(
        "SELECT TIME_FORMAT(TIME_FLOOR(__time, 'PT1M'), 'yyyy-MM-dd''T''HH:mm') AS t, src_app,"
        ' dst_app, SUM(bytes) AS b, SUM(packets) AS p, SUM(flows) AS f'
        f' FROM "{ds}" GROUP BY 1, 2, 3')
    return {(r["t"], r["src_app"], r["dst_app"]): (r["b"], r["p"], r["f"]) for r in rows}
