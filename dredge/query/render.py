"""Results as a readable terminal table, CSV (RFC 4180) or JSON lines for scripts.

Table and CSV are for people and spreadsheets: protocols by name (``tcp``; the number when
the IANA registry names none), service ports with their name (``443 (https)``, ``ephemeral``), times in ISO 8601 with their zone (``2026-11-25T10:00:00Z``;
every time in the store is UTC). The table also shortens bytes (``1.2 GB``) and costs; CSV
keeps every number whole. JSON keeps the types: protocol and port numbers, times as ISO 8601 with
``Z``, exactly what ``/api/query`` answers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import orjson
import pyarrow as pa

from dredge.query.ports import label as port_label
from dredge.query.protocols import name as protocol_name

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# control characters in a table cell, escaped: one result row stays one line of the table
CONTROLS = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def _plain(name: str, v: Any) -> Any:
    """What table and CSV show alike: protocol names, times with their zone."""
    if v is None:
        return None
    if name == "protocol":
        return protocol_name(v)
    if name == "port":
        return port_label(v)
    if isinstance(v, dt.datetime):
        stamp = v if v.tzinfo is None else v.astimezone(dt.UTC).replace(tzinfo=None)
        return stamp.strftime(TIME_FORMAT)  # naive times from the store are UTC
    return v


def _cell(name: str, v: Any) -> str:
    v = _plain(name, v)
    if v is None:
        return "-"
    if name == "bytes":
        return human_bytes(float(v))
    if name == "cost_usd":
        return f"${v:,.2f}" if v >= 1 else f"${v:.4f}"
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).translate(CONTROLS)


def table_text(table: pa.Table) -> str:
    names = table.column_names
    rows = [[_cell(n, v) for n, v in zip(names, r.values(), strict=True)] for r in table.to_pylist()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    numeric = [(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))
               and n not in ("protocol", "port") for n, t in zip(names, table.schema.types, strict=True)]
    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric, strict=True)).rstrip()
    lines = [fmt(names), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def csv_text(table: pa.Table) -> str:
    """RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, quote
    or line break; an empty field for null; numbers as numbers (floats as Python's repr)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    names = table.column_names
    writer.writerow(names)
    for r in table.to_pylist():
        writer.writerow(["" if v is None else v
                         for v in (_plain(n, x) for n, x in zip(names, r.values(), strict=True))])
    return out.getvalue()


def json_lines(table: pa.Table) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z) + b"\n"
                    for r in table.to_pylist())
