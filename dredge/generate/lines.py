"""Flow-log formats of the sample data, the string pool, and the line formatter.

Every column of a generated file is an int64 array: integer fields hold their value, string
fields hold an id into one :class:`StringPool`, and ``-1`` is null (``-`` in text, null in
Parquet). One compiled kernel (``format_rows`` in ``_native.c``) turns a block of such
columns into space-separated lines.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dredge.generate import _native

I64 = npt.NDArray[np.int64]

V2 = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip
V5 = (
    *V2[:5], "pkt-srcaddr", "pkt-dstaddr", *V2[5:],
    "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "region", "az-id",
    "flow-direction", "traffic-path", "pkt-src-aws-service", "pkt-dst-aws-service",
    "sublocation-type", "sublocation-id",
)  # fmt: skip
# A custom format whose order follows no AWS version and which leaves some fields out.
V5_SHUFFLED = (
    "start", "end", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "bytes", "packets", "action", "log-status", "version", "account-id", "az-id", "region",
    "vpc-id", "subnet-id", "instance-id", "flow-direction", "traffic-path", "type",
    "pkt-srcaddr", "pkt-dstaddr", "tcp-flags",
)  # fmt: skip
FORMATS: dict[str, tuple[str, ...]] = {"v2": V2, "v5": V5, "v5-shuffled": V5_SHUFFLED}
FORMAT_VERSION = {"v2": 2, "v5": 5, "v5-shuffled": 5}

INT_FIELDS = frozenset(
    {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end",
     "tcp-flags", "traffic-path"}
)  # fmt: skip
INT64_FIELDS = frozenset({"packets", "bytes", "start", "end"})


def parquet_type(field: str) -> pa.DataType:
    """The type AWS's Parquet delivery gives a field."""
    if field in INT64_FIELDS:
        return pa.int64()
    return pa.int32() if field in INT_FIELDS else pa.string()


class StringPool:
    """Interned strings; columns refer to them by id."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._items: list[str] = []
        self._frozen: tuple[npt.NDArray[np.uint8], I64, I64, pa.Array] | None = None

    def add(self, text: str) -> int:
        got = self._ids.get(text)
        if got is None:
            got = self._ids[text] = len(self._items)
            self._items.append(text)
            self._frozen = None
        return got

    def add_many(self, texts: list[str]) -> I64:
        return np.fromiter((self.add(t) for t in texts), dtype=np.int64, count=len(texts))

    def text(self, sid: int) -> str:
        return self._items[sid]

    def frozen(self) -> tuple[npt.NDArray[np.uint8], I64, I64, pa.Array]:
        """(utf-8 bytes, offsets, lengths, Arrow string array) of all strings, built once."""
        if self._frozen is None:
            encoded = [t.encode() for t in self._items]
            lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
            offsets = np.zeros(len(encoded), dtype=np.int64)
            np.cumsum(lengths[:-1], out=offsets[1:])
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            self._frozen = (data, offsets, lengths, pa.array(self._items, pa.string()))
        return self._frozen


def format_lines(
    fields: tuple[str, ...], cols: dict[str, I64], pool: StringPool
) -> tuple[bytes, I64]:
    """Lines (each ending in a newline) for ``cols`` in ``fields`` order, and each line's end."""
    data, offsets, lengths, _ = pool.frozen()
    n = len(cols[fields[0]])
    table = np.empty((n, len(fields)), dtype=np.int64)
    width = len(fields)
    for j, name in enumerate(fields):
        col = cols[name]
        table[:, j] = col
        if name in INT_FIELDS:
            width += 20
        elif n:
            width += int(lengths[np.maximum(col, 0)].max())
    is_str = np.array([name not in INT_FIELDS for name in fields], dtype=np.bool_)
    out = np.empty(n * width, dtype=np.uint8)
    line_end = np.empty(n, dtype=np.int64)
    used = _native.format_rows(table, n, len(fields), is_str, data, offsets, lengths, out,
                               line_end)
    return out[:used].tobytes(), line_end


def arrow_column(field: str, col: I64, pool: StringPool) -> pa.Array:
    """One column as Arrow, typed as AWS's Parquet delivery types it; ``-1`` becomes null."""
    null = col < 0
    if field in INT_FIELDS:
        return pa.array(col, type=parquet_type(field), mask=null)
    strings = pool.frozen()[3]
    ids = pa.array(np.where(null, 0, col), mask=null)
    return strings.take(ids)


MALFORMED_KINDS = ("field_count_short", "bytes_not_numeric", "bad_address", "field_count_long")


def malform(line: bytes, fields: tuple[str, ...], kind: int) -> bytes:
    """A copy of a good line broken in one of the ways :data:`MALFORMED_KINDS` names."""
    parts = line.rstrip(b"\n").split(b" ")
    if kind == 0:
        parts = parts[:-1]
    elif kind == 1:
        parts[fields.index("bytes")] = b"12ab"
    elif kind == 2:
        i = fields.index("srcaddr")
        parts[i] = b"2600:1f18::zz" if b":" in parts[i] else b"10.0.0.999"
    else:
        parts.append(b"extra")
    return b" ".join(parts) + b"\n"
