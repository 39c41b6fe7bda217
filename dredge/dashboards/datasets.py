"""The bundle's databases and datasets.

- **Druid** (always): ``druid://`` or ``druid+https://`` from ``[sink.druid]``'s URL, with
  its user but never its password (Superset asks for it on import, or it is set there);
  TLS settings go to pydruid's ``ssl_verify_cert``.
- **DuckDB** (when a store path is given): the embedded store, read-only, through
  duckdb-engine; the ``flows`` view as a dataset for SQL Lab and charts of one's own.

Datasets on Druid: the datasource itself (every column, the saved metrics), and three
virtual ones whose rows a chart needs in another shape: *app edges* (Sankey nodes prefixed
by side, so A→B and B→A never form a cycle), *app traffic* (each row once per side: one
app's inbound and outbound) and *transfer* (only rows that cross AZs or regions, with the
crossing and its cost in dollars, as ``dredge query cross-az``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from dredge.dashboards import schema
from dredge.dashboards.ids import stable_uuid
from dredge.dashboards.schema import TIME, Column, Metric
from dredge.errors import ConfigError
from dredge.sinks.druid import DruidConfig

DRUID_DATABASE = "Dredge Druid"
DUCKDB_DATABASE = "Dredge DuckDB (embedded store)"
VERSION = "1.0.0"


@dataclass(frozen=True)
class Dataset:
    name: str  # Superset's table_name
    database: str
    description: str
    columns: list[Column]
    metrics: list[Metric]
    sql: str = ""  # a virtual dataset's query; empty: the table itself
    schema: str = "druid"

    @property
    def uuid(self) -> str:
        return stable_uuid("dataset", f"{self.database}/{self.name}")

    @property
    def column_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns)

    @property
    def metric_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.metrics)


@dataclass(frozen=True)
class Datasets:
    """What charts are built on: the datasource and the virtual datasets."""

    flows: Dataset
    edges: Dataset
    traffic: Dataset
    transfer: Dataset
    extra: list[Dataset] = field(default_factory=list)  # not used by the dashboards

    def all(self) -> list[Dataset]:
        return [self.flows, self.edges, self.traffic, self.transfer, *self.extra]


def druid_uri(config: DruidConfig) -> str:
    """pydruid's SQLAlchemy URI for the Router at ``config.url`` (user, never password)."""
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("druid.url", "an http:// or https:// URL")
    scheme = "druid+https" if parts.scheme == "https" else "druid"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    user = f"{quote(config.user, safe='')}@" if config.user else ""
    return f"{scheme}://{user}{host}:{port}/druid/v2/sql/"


def druid_database(config: DruidConfig) -> dict[str, Any]:
    connect_args: dict[str, Any] = {}
    if config.url.startswith("https://"):
        if not config.tls_verify:
            connect_args["ssl_verify_cert"] = False
        elif config.ca_file:  # a path on the Superset machine: the same file there
            connect_args["ssl_verify_cert"] = os.path.abspath(config.ca_file)
    return _database(DRUID_DATABASE, druid_uri(config), {"connect_args": connect_args}
                     if connect_args else {})


def duckdb_database(path: str) -> dict[str, Any]:
    # read_only: Superset never writes, and a read-only open does not take the writer's lock
    return _database(DUCKDB_DATABASE, "duckdb:///" + os.path.abspath(path),
                     {"connect_args": {"read_only": True}}, sql_lab=True)


def _database(name: str, uri: str, engine_params: dict[str, Any], sql_lab: bool = True
              ) -> dict[str, Any]:
    return {
        "database_name": name,
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        "expose_in_sqllab": sql_lab,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"metadata_params": {}, "engine_params": engine_params,
                  "metadata_cache_timeout": {}, "schemas_allowed_for_file_upload": []},
        "impersonate_user": False,
        "uuid": stable_uuid("database", name),
        "version": VERSION,
    }


def druid_datasets(datasource: str) -> Datasets:
    table = f'"{datasource}"'
    cols = schema.flow_columns()
    metrics = schema.flow_metrics()
    every = ", ".join(c.name for c in cols)
    flows = Dataset(datasource, DRUID_DATABASE,
                    "Dredge's rolled-up flows: one row per minute and group",
                    [*cols, schema.traffic_path_name(), schema.port_name()], metrics)
    edges = Dataset(
        f"{datasource}_app_edges", DRUID_DATABASE,
        "flows with Sankey nodes: the source app suffixed (src), the destination (dst)",
        [*cols, Column("src_node", "VARCHAR", "Source node"),
         Column("dst_node", "VARCHAR", "Destination node")], metrics,
        sql=(f"SELECT {every},\n  src_app || ' (src)' AS src_node,\n"
             f"  dst_app || ' (dst)' AS dst_node\nFROM {table}"))
    sides = [Column("app", "VARCHAR", "App", "the app on this side of the flow"),
             Column("peer", "VARCHAR", "Peer app", "the app on the other side"),
             Column("direction", "VARCHAR", "Direction", "outbound (app sends) or inbound")]
    traffic = Dataset(
        f"{datasource}_app_traffic", DRUID_DATABASE,
        "each row twice: once as its source app's outbound traffic, once as its destination "
        "app's inbound traffic (filter one app to see both)",
        [*cols, *sides], metrics,
        # Druid plans no UNION ALL of aliased scans; a join with a two-row inline table does it
        sql=(f"SELECT {every},\n"
             "  CASE WHEN side.direction = 'outbound' THEN src_app ELSE dst_app END AS app,\n"
             "  CASE WHEN side.direction = 'outbound' THEN dst_app ELSE src_app END AS peer,\n"
             "  side.direction AS direction\n"
             f"FROM {table}\nCROSS JOIN (VALUES ('outbound'), ('inbound')) AS side(direction)"))
    transfer = Dataset(
        f"{datasource}_transfer", DRUID_DATABASE,
        "rows whose traffic crosses AZs or regions, with the crossing and its estimated cost "
        "(the cost model of dredge query cross-az)",
        [*cols, Column("crossing", "VARCHAR", "Crossing", "cross-az or cross-region"),
         Column("cost_usd", "DOUBLE", "Cost (USD)", "estimated data-transfer cost of the row")],
        metrics + schema.cost_metrics(),
        sql=(f"SELECT {every},\n  {schema.crossing_kind()} AS crossing,\n"
             f"  {schema.row_cost()} AS cost_usd\nFROM {table}\n"
             f"WHERE {schema.crossing_condition()}"))
    return Datasets(flows, edges, traffic, transfer)


def duckdb_dataset() -> Dataset:
    """The store's ``flows`` view (window_start instead of __time), plain sums as metrics."""
    cols = [Column("window_start", "TIMESTAMP", "Window start", "start of the rollup window "
                   "(UTC)") if c.name == TIME else c for c in schema.flow_columns()]
    metrics = [m for m in schema.flow_metrics() if m.name in ("bytes", "packets", "flows")]
    return Dataset("flows", DUCKDB_DATABASE, "the embedded store's flows view", cols, metrics,
                   schema="main")


def dataset_document(ds: Dataset) -> dict[str, Any]:
    """The dataset's YAML document as Superset exports it."""
    time_col = next((c.name for c in ds.columns if c.type == "TIMESTAMP"), None)
    return {
        "table_name": ds.name,
        "main_dttm_col": time_col,
        "description": ds.description,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": ds.schema if not ds.sql else None,
        "sql": ds.sql or None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": ds.uuid,
        "metrics": [{
            "metric_name": m.name, "verbose_name": m.label, "metric_type": None,
            "expression": m.expression, "description": m.description,
            "d3format": m.d3format or None, "currency": None, "extra": {},
            "warning_text": None,
        } for m in ds.metrics],
        "columns": [{
            "column_name": c.name, "verbose_name": c.label, "is_dttm": c.type == "TIMESTAMP",
            "is_active": True, "type": c.type, "advanced_data_type": None,
            "groupby": c.type != "TIMESTAMP" and not c.is_metric_input,
            "filterable": True, "expression": c.expression or None,
            "description": c.description or None, "python_date_format": None, "extra": {},
        } for c in ds.columns],
        "version": VERSION,
        "database_uuid": stable_uuid("database", ds.database),
    }
