"""The ledger table: opened (created if missing) through any pyiceberg catalog, its schema
checked, and rows converted to its Arrow schema.

The table is the ``flows`` view of the DuckDB store spelled out (``enrich.rollup.FLOWS_SCHEMA``):
``window_start`` as ``timestamptz`` (UTC, microseconds), both sides' eight owner fields,
protocol, action, flow_direction, traffic_path, bytes, packets, flows, port; partitioned by
``hour(window_start)``. A table whose columns do not match is refused with a
:class:`ConfigError` naming the column (extra columns another tool added are allowed when
optional). A table created before a column Dredge added later (``EVOLVED``: ``port``) is
evolved instead: the column is added, optional, and the rows already there read as NULL. Catalog and storage errors become :class:`SinkError` here (:func:`iceberg_errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dredge.errors import ConfigError, DredgeError, SinkError
from dredge.index.owners import OWNER_FIELDS
from dredge.sinks.base import Rows
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

__all__ = ["ARROW_SCHEMA", "iceberg_errors", "load", "open_table", "table_schema", "to_table_arrow"]

log = get_logger(__name__)

OWNER_COLUMNS = [f"{side}_{f}" for side in ("src", "dst") for f in OWNER_FIELDS]
REQUIRED = ("window_start", "bytes", "packets", "flows")
EVOLVED = ("port",)  # columns added after the first release: added to an older table

# What Dredge appends: every column of the table, in order; the required ones not null.
ARROW_SCHEMA = pa.schema(
    [pa.field("window_start", pa.timestamp("us", tz="UTC"), nullable=False)]
    + [pa.field(c, pa.string()) for c in OWNER_COLUMNS]
    + [pa.field("protocol", pa.int32()), pa.field("action", pa.string()),
       pa.field("flow_direction", pa.string()), pa.field("traffic_path", pa.int32())]
    + [pa.field(m, pa.int64(), nullable=False) for m in ("bytes", "packets", "flows")]
    + [pa.field("port", pa.int32())]  # the service port (flowlog.ports); NULL: none
)


def table_schema() -> Schema:
    """The Iceberg schema of the ledger table (field ids 1..N in ARROW_SCHEMA's order)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType

    kinds = {pa.string(): StringType(), pa.int32(): IntegerType(), pa.int64(): LongType()}
    fields = []
    for i, f in enumerate(ARROW_SCHEMA, start=1):
        kind = TimestamptzType() if f.name == "window_start" else kinds[f.type]
        fields.append(NestedField(i, f.name, kind, required=not f.nullable))
    return Schema(*fields)


@contextlib.contextmanager
def iceberg_errors(what: str) -> Iterator[None]:
    """The one place where catalog, storage and pyiceberg errors become SinkError."""
    try:
        yield
    except DredgeError:
        raise
    except Exception as exc:  # botocore, sqlalchemy, OSError, pyiceberg: all mean "not stored"
        raise SinkError(f"Iceberg: {what}: {type(exc).__name__}: {str(exc)[:300]}") from exc


def load(config: IcebergConfig) -> Catalog:
    from pyiceberg.catalog import load_catalog

    from dredge.sinks.iceberg.fileio import IMPL

    properties = {"py-io-impl": IMPL, **config.catalog}  # the catalog's own FileIO wins
    with iceberg_errors(f"cannot load catalog {config.catalog_name!r}"):
        return load_catalog(config.catalog_name, **properties)


def open_table(config: IcebergConfig, create: bool = True) -> Table:
    """The ledger table; the namespace and table are created if missing (``create``), the
    schema checked (ConfigError naming the column)."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = load(config)
    where = f"{config.namespace}.{config.table}"
    with iceberg_errors(f"cannot open table {where}"):
        try:
            table = catalog.load_table(config.identifier)
        except NoSuchTableError:
            if not create:
                raise SinkError(f"Iceberg: no table {where} in catalog {config.catalog_name!r}") from None
            table = _create(catalog, config)
        table = _evolve(table, where)
    check_schema(table.schema(), where)
    return table


def _evolve(table: Table, where: str) -> Table:
    """Add the ``EVOLVED`` columns an older table lacks (optional, so its rows read NULL).
    Several workers may try at once: one commit wins, the others reload and find it done."""
    from pyiceberg.exceptions import CommitFailedException

    want = table_schema()
    for attempt in range(5):
        have = {f.name for f in table.schema().fields}
        missing = [want.find_field(n) for n in EVOLVED if n not in have]
        if not missing:
            return table
        try:
            with table.update_schema() as update:
                for f in missing:
                    update.add_column(f.name, f.field_type, doc=f.doc)
            log.info("iceberg_table_evolved", table=where, added=[f.name for f in missing])
        except CommitFailedException:
            if attempt == 4:
                raise
            table = table.refresh()
    return table


def _create(catalog: Catalog, config: IcebergConfig) -> Table:
    from pyiceberg.exceptions import TableAlreadyExistsError
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import HourTransform

    catalog.create_namespace_if_not_exists(config.namespace)
    spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=HourTransform(),
                                        name="window_start_hour"))
    try:
        return catalog.create_table(config.identifier, schema=table_schema(), partition_spec=spec,
                                    properties={"format-version": "2"})
    except TableAlreadyExistsError:  # another worker created it meanwhile
        return catalog.load_table(config.identifier)


def check_schema(schema: Any, where: str) -> None:
    """Every Dredge column present with its type; extra columns only if optional."""
    want = table_schema()
    have = {f.name: f for f in schema.fields}
    for f in want.fields:
        got = have.get(f.name)
        if got is None:
            raise ConfigError("sink.iceberg.table", f"table {where} has no column {f.name!r}")
        if got.field_type != f.field_type:
            raise ConfigError("sink.iceberg.table", f"table {where}: column {f.name!r} is"
                              f" {got.field_type}, Dredge writes {f.field_type}")
    extra = [f.name for f in schema.fields if f.name not in {w.name for w in want.fields} and f.required]
    if extra:
        raise ConfigError("sink.iceberg.table", f"table {where}: column {extra[0]!r} is required"
                          " and Dredge does not write it")


def to_table_arrow(rows: Rows) -> pa.Table:
    """Rolled rows (facts + owner dictionary) or a ``flows``-schema table as the ledger
    table's Arrow schema (columnar: one take per side, casts)."""
    from dredge.enrich.rollup import Rolled

    table = rows.materialize() if isinstance(rows, Rolled) else rows
    cols = []
    for f in ARROW_SCHEMA:
        col = table.column(f.name)
        if f.name == "window_start" and col.type.tz is None:
            col = col.cast(pa.timestamp("us")).cast(f.type)  # naive UTC -> UTC, same instant
        cols.append(col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=ARROW_SCHEMA)
