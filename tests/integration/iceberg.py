"""The Iceberg ledger as the reconcile, query and housekeeping tests see it: the catalog of
the ``iceberg_catalog`` fixture (conftest.py: SQLite or moto's Glue, the warehouse in a moto
S3 bucket), the ledger filled from a DuckDB store's rows in several commits, and totals by
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
from tests.integration.druid import Totals

if TYPE_CHECKING:
    from pyiceberg.table import Table


def ledger_config(catalog: dict[str, str]) -> IcebergConfig:
    """``[sink.iceberg]`` for the ``iceberg_catalog`` fixture's catalog (conftest.py), a table
    of its own (moto's Glue catalog is shared by the whole session)."""
    return IcebergConfig(catalog=catalog, table=f"flows_{uuid.uuid4().hex[:8]}",
                         commit_interval_s=1.0)


def toml_of(config: IcebergConfig, head: str = "") -> str:
    """A config file with ``[sink.iceberg]`` for ``config`` (after ``head``)."""
    return (head + f'[[streams]]\nname = "flows"\n[sink.iceberg]\ntable = "{config.table}"\n'
            "[sink.iceberg.catalog]\n"
            + "".join(f'"{k}" = "{v}"\n' for k, v in config.catalog.items()))


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
    """Totals by (minute, src_app, dst_app) of the table's current snapshot (refreshed)."""
    table.refresh()
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


def synthetic_rows(n: int, *, hours: int = 2, seed: int = 1,
                   start: str = "2026-11-25T00:00:00") -> pa.Table:
    """``n`` rolled-up rows in the ``flows`` schema over ``hours`` hours (a few apps, AZs and
    regions, so every query kind has something to say)."""
    import numpy as np

    from dredge.enrich.rollup import FLOWS_SCHEMA

    rng = np.random.default_rng(seed)
    t0 = np.datetime64(start, "s")
    minutes = rng.integers(0, hours * 60, n)
    apps = np.array(["api", "web", "db", "cache", "internet", "nat"])
    azs = np.array(["use1-az1", "use1-az2", "use1-az4"])
    regions = np.array(["us-east-1", "us-west-2"])
    cols: dict[str, object] = {"window_start": t0 + minutes.astype("timedelta64[m]")}
    for side in ("src", "dst"):
        app = apps[rng.integers(0, len(apps), n)]
        cols[f"{side}_app"] = app
        cols[f"{side}_cluster"] = np.char.add(app.astype(str), "-prod")
        cols[f"{side}_account"] = np.full(n, "123456789012")
        cols[f"{side}_region"] = regions[rng.integers(0, 2, n)]
        cols[f"{side}_az"] = azs[rng.integers(0, 3, n)]
        cols[f"{side}_vpc"] = np.full(n, "vpc-1")
        cols[f"{side}_subnet"] = np.full(n, "subnet-1")
        cols[f"{side}_type"] = np.where(app == "internet", "internet",
                                        np.where(app == "nat", "nat-gateway", "instance"))
    cols["protocol"] = rng.choice([6, 17, 1], n)
    cols["action"] = np.where(rng.random(n) < 0.1, "REJECT", "ACCEPT")
    cols["flow_direction"] = np.where(rng.random(n) < 0.5, "ingress", "egress")
    cols["traffic_path"] = rng.integers(1, 9, n)
    port = rng.choice([443, 5432, 53, 0, 22], n)
    cols["port"] = pa.array(port, mask=cols["protocol"] == 1)  # ICMP: no service port
    cols["bytes"] = rng.integers(40, 10_000_000, n)
    cols["packets"] = rng.integers(1, 10_000, n)
    cols["flows"] = rng.integers(1, 50, n)
    return pa.table({f.name: pa.array(cols[f.name]).cast(f.type) for f in FLOWS_SCHEMA},
                    schema=FLOWS_SCHEMA)
