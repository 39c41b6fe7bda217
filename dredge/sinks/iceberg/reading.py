"""Reading the Iceberg ledger back: time filters pushed down to Iceberg, the data files of each
hour partition, and scans as the ``flows`` columns of the DuckDB store.

Used by ``dredge query --backend iceberg`` (:mod:`dredge.query.iceberg`), the Druid reconcile
(:mod:`dredge.sinks.druid_reconcile`) and housekeeping (:mod:`.housekeeping`). Every reader
pins one snapshot: the files it plans and the rows it reads are the same.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dredge.enrich.rollup import FLOWS_SCHEMA
from dredge.errors import SinkError

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

HOUR = 3600
# The store's flows view gives microsecond TIMESTAMPs (UTC, no zone); the rollup uses seconds.
FLOWS_US = pa.schema([pa.field("window_start", pa.timestamp("us")), *list(FLOWS_SCHEMA)[1:]])


def expressions() -> Any:
    """pyiceberg's expression module, untyped: its pydantic predicates take ``(name, value)``
    at run time, which their generated signatures do not say."""
    import pyiceberg.expressions

    return pyiceberg.expressions


def time_filter(start: int | None, end: int | None) -> BooleanExpression:
    """``window_start`` in [start, end) (epoch seconds; None: unbounded) as an Iceberg filter:
    on a table partitioned by hour(window_start) it selects whole partitions for whole hours."""
    ops = expressions()
    expr: BooleanExpression = ops.AlwaysTrue()
    if start is not None:
        expr = ops.And(expr, ops.GreaterThanOrEqual("window_start", int(start) * 1_000_000))
    if end is not None:
        expr = ops.And(expr, ops.LessThan("window_start", int(end) * 1_000_000))
    return expr


def as_flows(table: pa.Table) -> pa.Table:
    """Rows of the Iceberg table as the store's ``flows`` columns and types (a zoned timestamp
    becomes the same instant without zone: the store keeps UTC)."""
    ws = table.column("window_start")
    if pa.types.is_timestamp(ws.type) and ws.type.tz is not None:
        ws = ws.cast(pa.timestamp(ws.type.unit, tz="UTC")).cast(pa.timestamp(ws.type.unit))
    cols = [ws.cast(FLOWS_US.field("window_start").type)]
    # a snapshot from before a column was added (``table.EVOLVED``) reads it as NULL
    cols += [table.column(f.name).cast(f.type) if f.name in table.column_names
             else pa.nulls(table.num_rows, f.type) for f in list(FLOWS_US)[1:]]
    return pa.table(cols, schema=FLOWS_US)


def scan_flows(table: Table, row_filter: BooleanExpression,
               snapshot_id: int | None = None) -> pa.Table:
    """The rows matching ``row_filter`` in one snapshot (default: the current one) as flows."""
    return as_flows(table.scan(row_filter=row_filter, snapshot_id=snapshot_id).to_arrow())


def file_hour(table: Table, data_file: DataFile) -> int:
    """The hour (epoch seconds) of a data file's ``hour(window_start)`` partition."""
    from pyiceberg.transforms import HourTransform

    source = table.schema().find_field("window_start").field_id
    spec = table.specs()[data_file.spec_id]
    for pos, field in enumerate(spec.fields):
        if field.source_id == source and isinstance(field.transform, HourTransform):
            return int(data_file.partition[pos]) * HOUR
    raise SinkError(f"Iceberg table {table.name()} is not partitioned by hour(window_start) "
                    f"(spec {data_file.spec_id}: {spec}); Dredge's ledger tables are")


def hour_files(table: Table, snapshot_id: int, start: int | None = None,
               end: int | None = None) -> dict[int, list[DataFile]]:
    """The live data files of each hour partition in [start, end) of one snapshot (manifests
    only: no data is read). A file with delete files attached is refused: Dredge's tables are
    append-only and nothing here applies deletes."""
    out: dict[int, list[DataFile]] = defaultdict(list)
    for task in table.scan(row_filter=time_filter(start, end), snapshot_id=snapshot_id).plan_files():
        if task.delete_files:
            raise SinkError(f"Iceberg table {table.name()} has delete files on "
                            f"{task.file.file_path}; Dredge reads append-only tables only")
        out[file_hour(table, task.file)].append(task.file)
    return dict(out)


def fingerprint(files: list[DataFile]) -> str:
    """What an hour's content is made of: a digest of its data files' paths. Iceberg files are
    immutable and a path is never reused, so the same set means the same rows; any commit
    touching the hour (an append, a compaction) changes it. Unlike a snapshot id, it survives
    snapshot expiry."""
    digest = hashlib.sha256("\n".join(sorted(str(f.file_path) for f in files)).encode())
    return digest.hexdigest()[:20]


def summary_of(table: Table) -> dict[str, Any]:
    """The current snapshot's summary properties ({} for an empty table)."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return {}
    return dict(snapshot.summary.additional_properties)
