from __future__ import annotations

import pyarrow as pa
import pytest

from dredge.enrich.rollup import FLOWS_SCHEMA, Rolled
from dredge.errors import ConfigError, SinkError
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.table import ARROW_SCHEMA, open_table, table_schema, to_table_arrow


def flows(n: int = 3) -> pa.Table:
    cols: dict[str, pa.Array] = {"window_start": pa.array([1_764_000_000 + 60 * i for i in range(n)], pa.timestamp("s"))}
    for f in FLOWS_SCHEMA.names[1:17]:
        cols[f] = pa.array([f"{f}-{i % 2}" for i in range(n)])
    cols["protocol"] = pa.array([6] * n, pa.int16())
    cols["action"] = pa.array(["ACCEPT", "REJECT", None][:n] + ["ACCEPT"] * max(0, n - 3))
    cols["flow_direction"] = pa.array([None] * n, pa.string())
    cols["traffic_path"] = pa.array([None] * n, pa.int8())
    for m in ("bytes", "packets", "flows"):
        cols[m] = pa.array(range(1, n + 1), pa.int64())
    cols["port"] = pa.array(([443, None, 0] * n)[:n], pa.int32())
    return pa.table(cols, schema=FLOWS_SCHEMA)


def test_rows_become_the_table_schema_same_instant() -> None:
    t = flows()
    for rows in (t, Rolled.from_table(t)):
        out = to_table_arrow(rows)
        assert out.schema == ARROW_SCHEMA
        assert out.column("window_start")[0].as_py().timestamp() == 1_764_000_000
        assert out.column("bytes").to_pylist() == [1, 2, 3]
        assert out.column("src_app").to_pylist() == t.column("src_app").to_pylist()
        assert out.column("action").to_pylist() == ["ACCEPT", "REJECT", None]


def test_open_creates_partitioned_table_and_appends(iceberg_config: IcebergConfig) -> None:
    table = open_table(iceberg_config)
    assert [f.transform.__class__.__name__ for f in table.spec().fields] == ["HourTransform"]
    table.append(to_table_arrow(flows()))
    again = open_table(iceberg_config, create=False)
    assert again.scan().to_arrow().num_rows == 3


def test_missing_table_without_create(iceberg_config: IcebergConfig) -> None:
    with pytest.raises(SinkError, match=r"no table dredge\.flows"):
        open_table(iceberg_config, create=False)


def test_schema_mismatch_names_the_column(iceberg_config: IcebergConfig) -> None:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField, StringType

    catalog = load_catalog("dredge", **iceberg_config.catalog)
    catalog.create_namespace("dredge")
    fields = [NestedField(f.field_id, f.name, StringType() if f.name == "bytes" else f.field_type,
                          required=f.required) for f in table_schema().fields]
    catalog.create_table(("dredge", "flows"), schema=Schema(*fields))
    with pytest.raises(ConfigError, match="column 'bytes' is string") as err:
        open_table(iceberg_config)
    assert err.value.field == "sink.iceberg.table"
    catalog.drop_table(("dredge", "flows"))
    catalog.create_table(("dredge", "flows"), schema=Schema(*[f for f in table_schema().fields
                                                                if f.name != "flows"]))
    with pytest.raises(ConfigError, match="no column 'flows'"):
        open_table(iceberg_config)


def test_unreachable_catalog_is_a_sink_error() -> None:
    cfg = IcebergConfig(catalog={"type": "sql", "uri": "sqlite:////nonexistent/dir/c.db", "warehouse": "/tmp/x"})
    with pytest.raises(SinkError, match="Iceberg"):
        open_table(cfg)


def test_table_without_port_is_evolved_and_old_rows_read_null(iceberg_config: IcebergConfig) -> None:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import HourTransform

    from dredge.sinks.iceberg.reading import scan_flows, time_filter

    # the table as the schema before the port created it, holding rows written then
    catalog = load_catalog("dredge", **iceberg_config.catalog)
    catalog.create_namespace("dredge")
    old = Schema(*[f for f in table_schema().fields if f.name != "port"])
    spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=HourTransform(),
                                        name="window_start_hour"))
    table = catalog.create_table(("dredge", "flows"), schema=old, partition_spec=spec)
    old_rows = to_table_arrow(flows())
    table.append(old_rows.drop_columns(["port"]).cast(
        pa.schema([f for f in ARROW_SCHEMA if f.name != "port"])))
    evolved = open_table(iceberg_config)
    port = evolved.schema().find_field("port")
    assert not port.required and str(port.field_type) == "int"
    assert [f.name for f in evolved.schema().fields] == [f.name for f in table_schema().fields]
    evolved.append(to_table_arrow(flows()))
    rows = scan_flows(open_table(iceberg_config, create=False), time_filter(None, None))
    assert sorted(rows.column("port").to_pylist(), key=str) == sorted(
        [None] * 3 + [443, None, 0], key=str)
    assert rows.column("bytes").to_pylist().count(1) == 2  # both appends read back
    open_table(iceberg_config)  # a second open finds nothing to add
