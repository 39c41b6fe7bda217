"""The Iceberg ledger as the reconcile, query and housekeeping tests see it: a SQLite SQL
catalog in tmp_path with its warehouse in a bucket of the session's moto server (S3 on
loopback), the ledger filled from a DuckDB store's rows in several commits, and totals by
(minute, src_app, dst_app) read back from the table.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.positions import summary_with_positions
from dredge.sinks.iceberg.reading import scan_flows, time_filter
from dredge.sinks.iceberg.table import to_table_arrow
from dredge.testing import MotoServer
from tests.integration.druid import Totals

if TYPE_CHECKING:
    from pyiceberg.table import Table


def s3_config(moto: MotoServer, tmp_path: Path) -> IcebergConfig:
    """A fresh bucket on moto as the warehouse, the catalog in SQLite."""
    import boto3

    bucket = f"dredge-wh-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return IcebergConfig(catalog={
        "type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
        "warehouse": f"s3://{bucket}/wh", "s3.endpoint": moto.endpoint,
        "s3.access-key-id": "testing", "s3.secret-access-key": "testing",
        "s3.region": "us-east-1"}, commit_interval_s=1.0)


def store_rows(db: Path, where: str = "true") -> pa.Table:
    """Rows of a DuckDB store's ``flows`` (a replay) in a stable order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        return con.sql(f"SELECT * FROM flows WHERE {where} ORDER BY ALL").to_arrow_table()
    finally:
        con.close()


def append(table: Table, rows: pa.Table, commits: int = 1, shard: str = "shard-0") -> None:
    """``rows`` appended in ``commits`` slices, each commit carrying positions forward as the
    ledger's do (one made-up shard moving on)."""
    step = -(-rows.num_rows // commits)
    for i in range(commits):
        part = rows.slice(i * step, step)
        if part.num_rows == 0:
            continue
        table.refresh()
        current = table.current_snapshot()
        props = summary_with_positions(current.summary if current else None,
                                       {("stream", shard): (str(1000 + i), 0)})
        table.append(to_table_arrow(part), snapshot_properties=props)


def table_totals(table: Table) -> Totals:
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone='UTC'")
        con.register("t", scan_flows(table, time_filter(None, None)))
        rows = con.execute(
            "SELECT strftime(date_trunc('minute', window_start), '%Y-%m-%dT%H:%M'), src_app,"
            " dst_app, sum(bytes)::BIGINT, sum(packets)::BIGINT, sum(flows)::BIGINT"
            " FROM t GROUP BY 1, 2, 3").fetchall()
    finally:
        con.close()
    return {(t, s, d): (b, p, f) for t, s, d, b, p, f in rows}
