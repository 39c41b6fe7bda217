"""Results as a readable terminal table, or as JSON lines for scripts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def _cell(name: str, v: Any) -> str:
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
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


def table_text(table: pa.Table) -> str:
    names = table.column_names
    rows = [[_cell(n, v) for n, v in zip(names, r.values(), strict=True)] for r in table.to_pylist()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
               for t in table.schema.types]
    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric, strict=True)).rstrip()
    lines = [fmt(names), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def json_lines(table: pa.Table) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z) + b"\n"
                    for r in table.to_pylist())
