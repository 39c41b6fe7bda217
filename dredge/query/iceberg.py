"""``dredge query --backend iceberg``: the same query specs, answered from the Iceberg ledger.

The spec's time range is pushed down to Iceberg (a row filter on ``window_start``: the table is
partitioned by its hour, so only the hours asked for are planned and read, and the files'
column bounds prune further); so are ``--where dim=value`` / ``dim=a|b`` filters (Iceberg
skips files whose bounds exclude the value; the SQL applies every filter again anyway). The
scan becomes the ``flows`` columns and types of the DuckDB store
(:func:`dredge.sinks.iceberg.reading.as_flows`) and is registered as ``flows`` in an in-memory
DuckDB that runs the very SQL the DuckDB backend runs (:meth:`QuerySpec.sql`): every query
kind gives the answer DuckDB gives for the same rows.

A scan reads one snapshot (the table's current one when the query starts): a commit landing
meanwhile is not half-seen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dredge.query.spec import NUMERIC, QuerySpec
from dredge.sinks.iceberg.reading import expressions, scan_flows, time_filter

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table


def spec_filter(spec: QuerySpec) -> BooleanExpression:
    """The spec's time range and its positive ``--where`` filters, for Iceberg's planning."""
    ops = expressions()
    expr = time_filter(spec.start, spec.end)
    for f in spec.filters:
        if f.negate:
            continue  # a file's bounds rarely exclude "not x": the SQL applies it
        values: list[Any] = [int(v) for v in f.values] if f.dim in NUMERIC else list(f.values)
        expr = ops.And(expr, ops.EqualTo(f.dim, values[0]) if len(values) == 1
                       else ops.In(f.dim, values))
    return expr


def run_on(rows: pa.Table, spec: QuerySpec) -> pa.Table:
    """Run a spec's DuckDB SQL over ``rows`` (the ``flows`` columns) registered as ``flows``."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_progress_bar = false")
        con.register("flows", rows)
        sql, params = spec.sql()
        result: pa.Table = con.sql(sql, params=params or None).to_arrow_table()
        return result
    finally:
        con.close()


def run(spec: QuerySpec, table: Table) -> pa.Table:
    """A query spec on the Iceberg table; the result as DuckDB gives it for the same rows."""
    return run_on(scan_flows(table, spec_filter(spec)), spec)


def time_range(table: Table) -> tuple[datetime | None, datetime | None]:
    """The first and last ``window_start`` (None, None when the table is empty), from the
    data files' column bounds (no data read)."""
    lo: datetime | None = None
    hi: datetime | None = None
    for task in table.scan(selected_fields=("window_start",)).plan_files():
        bounds = _bounds(table, task.file)
        if bounds is None:
            continue
        lo = bounds[0] if lo is None else min(lo, bounds[0])
        hi = bounds[1] if hi is None else max(hi, bounds[1])
    return lo, hi


def _bounds(table: Table, data_file: DataFile) -> tuple[datetime, datetime] | None:
    from pyiceberg.conversions import from_bytes

    field = table.schema().find_field("window_start")
    low = (data_file.lower_bounds or {}).get(field.field_id)
    high = (data_file.upper_bounds or {}).get(field.field_id)
    if low is None or high is None:
        return None
    kind: Any = field.field_type
    lo, hi = (datetime.fromtimestamp(int(from_bytes(kind, b)) / 1e6, UTC).replace(tzinfo=None)
              for b in (low, high))
    return lo, hi
