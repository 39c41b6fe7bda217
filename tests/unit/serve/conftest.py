"""A small DuckDB store with hand-made rows (the ``flows`` schema), for the server and cost
model tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dredge.enrich.rollup import FLOWS_SCHEMA
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

T0 = datetime(2026, 11, 25, 10, 0)


def flow(src: dict[str, Any], dst: dict[str, Any], nbytes: int, *, action: str = "ACCEPT",
         t: datetime = T0, protocol: int = 6) -> dict[str, Any]:
    row: dict[str, Any] = {"window_start": t, "protocol": protocol, "action": action,
                           "flow_direction": "egress", "traffic_path": 1, "bytes": nbytes,
                           "packets": max(1, nbytes // 1000), "flows": 1}
    for side, owner in (("src", src), ("dst", dst)):
        for f in ("app", "cluster", "account", "region", "az", "vpc", "subnet", "type"):
            row[f"{side}_{f}"] = owner.get(f)
    return row


def host(app: str, az: str = "use1-az1", region: str = "us-east-1", type_: str = "instance") -> dict[str, Any]:
    return {"app": app, "region": region, "az": az, "type": type_, "account": "111122223333"}


INTERNET = {"app": "internet", "type": "internet"}
NAT = host("egress-nat", az="use1-az1", type_="nat-gateway")

ROWS = [
    flow(host("api"), host("db", az="use1-az2"), 4_000_000_000),  # cross-az
    flow(host("api"), host("db", region="eu-west-1", az="euw1-az1"), 1_000_000_000),  # cross-region
    flow(host("api"), INTERNET, 2_000_000_000),  # internet egress
    flow(host("api"), INTERNET, 500_000_000, action="REJECT"),  # never left
    flow(INTERNET, host("api"), 7_000_000_000),  # ingress: free
    flow(host("web"), NAT, 1_000_000_000),  # host -> NAT, same AZ: NAT only
    flow(NAT, host("web"), 3_000_000_000),  # reply through NAT
    flow(NAT, INTERNET, 1_000_000_000),  # the NAT's internet leg: internet, not NAT again
    flow(host("batch", az="use1-az2"), NAT, 2_000_000_000),  # cross-az AND NAT
    flow(host("web"), host("api"), 9_000_000_000, t=datetime(2026, 11, 25, 11, 0)),  # same AZ: free
]


def make_store(path: Path, rows: list[dict[str, Any]] = ROWS) -> Path:
    table = pa.Table.from_pylist(rows, schema=FLOWS_SCHEMA)
    with DuckDBSink(DuckDBConfig(path=str(path))) as sink:
        sink.store_batch(table, [])
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "s.duckdb")
