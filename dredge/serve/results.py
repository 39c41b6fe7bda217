"""A result table as the API's JSON (``columns``, ``rows``), and back into a table.

Times are ISO 8601 in UTC with ``Z`` and numbers JSON numbers, exactly as
``dredge query --json`` writes them (the same orjson options), so a page, a script and the
command line read the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

    from dredge.query.spec import QuerySpec

JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=JSON_OPTIONS)


def table_json(kind: str, table: pa.Table, elapsed_ms: float) -> bytes:
    columns = table.column_names
    data = table.to_pydict()
    rows = [list(r) for r in zip(*(data[c] for c in columns), strict=True)] if columns else []
    return dumps({"kind": kind, "columns": columns, "rows": rows,
                  "elapsed_ms": round(elapsed_ms, 3)})


def table_from_json(spec: QuerySpec, payload: dict[str, Any]) -> pa.Table:
    """An answer of ``/api/query`` as the table ``dredge query`` would have printed."""
    import pyarrow as pa

    schema = spec.result_schema()
    columns = payload.get("columns")
    rows = payload.get("rows")
    if columns != schema.names or not isinstance(rows, list):
        raise ValueError(f"unexpected columns {columns!r} (expected {schema.names})")
    arrays = {}
    for i, f in enumerate(schema):
        values = [r[i] for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [None if v is None else datetime.fromisoformat(v).replace(tzinfo=None)
                      for v in values]
        arrays[f.name] = pa.array(values, f.type)
    return pa.table(arrays, schema=schema)
