"""Plausibility bounds of a flow-log record's numbers, checked in columns.

A record that parses but cannot be true is refused (dead-lettered as ``out_of_range`` with the
field), never stored: a port above 65535, a byte count no link carries, a window centuries
away. The bounds (documented in the README, "Inputs"):

- ``srcport``, ``dstport``: 0-65535; ``protocol``: 0-255; ``tcp-flags``: 0-255;
  ``traffic-path``: 1-8; ``version``: 2-10.
- ``start`` at most a day past the reader's clock; ``end`` not before ``start``, at most a day
  after it (AWS aggregates over at most 10 minutes).
- a line at most ``MAX_LINE_BYTES`` (1 MiB) long: a record is a few hundred bytes. The file
  reader drops longer lines as they stream; one that fits inside a read chunk is marked here
  (``line_too_long``), so the reason does not depend on where the chunk boundaries fall.
- ``bytes`` at most 65,535 per packet (the largest IP packet) and at most 50 GB per second of
  the window plus one second (400 Gbit/s, past any single interface), so one record stays
  far inside int64 (4.3e15 at most); a group of thousands of such records does not, and its
  sums saturate instead (``enrich.rollup``, ``query.spec.Dialect.sum``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.flowlog import kernels
from dredge.flowlog.fields import MAX_LINE_BYTES
from dredge.flowlog.parser import ParsedChunk

FUTURE_S = 86_400  # how far past the reader's clock a start may be
MAX_DURATION_S = 86_400
MAX_PACKET_BYTES = 65_535
MAX_BYTES_PER_S = 50_000_000_000

RANGES: dict[str, tuple[int, int]] = {
    "srcport": (0, 65_535),
    "dstport": (0, 65_535),
    "protocol": (0, 255),
    "tcp-flags": (0, 255),
    "traffic-path": (1, 8),
    "version": (2, 10),
}

# (values, null mask) of an integer field, or None when the format lacks it
Column = Callable[[str], "tuple[np.ndarray, np.ndarray] | None"]


def out_of_range(column: Column, n: int, now: int) -> tuple[np.ndarray, np.ndarray]:
    """(bad mask, index into ``FIELD_ORDER`` of the first field out of bounds, -1 if none)."""
    bad = np.zeros(n, np.bool_)
    which = np.full(n, -1, np.int16)

    def flag(mask: np.ndarray, field: str) -> None:
        new = mask & ~bad
        which[new] = FIELD_ORDER.index(field)
        bad[new] = True

    for name, (lo, hi) in RANGES.items():
        c = column(name)
        if c is not None:
            vals, nulls = c
            flag(~nulls & ((vals < lo) | (vals > hi)), name)
    start, end, packets, nbytes = (column(f) for f in ("start", "end", "packets", "bytes"))
    if start is not None:
        s, s_null = start
        flag(~s_null & (s > now + FUTURE_S), "start")
        if end is not None:
            e, e_null = end
            both = ~s_null & ~e_null
            flag(both & ((e < s) | (e - s > MAX_DURATION_S)), "end")
            if nbytes is not None:
                b, b_null = nbytes
                # e - s is within [0, MAX_DURATION_S] where not already flagged
                span = np.clip(e - s, 0, MAX_DURATION_S) + 1
                flag(both & ~b_null & (b > span * MAX_BYTES_PER_S), "bytes")
    if packets is not None and nbytes is not None:
        p, p_null = packets
        b, b_null = nbytes
        # b > p * MAX without the product (p may be up to 10**18)
        flag(~p_null & ~b_null & ((b + (MAX_PACKET_BYTES - 1)) // MAX_PACKET_BYTES > p), "bytes")
    return bad, which


FIELD_ORDER = (*RANGES, "start", "end", "bytes")


def arrow_column(table: pa.Table) -> Column:
    """:data:`Column` over an Arrow table of records (Parquet: ``tcp_flags`` for
    ``tcp-flags``); a column that is not a whole number at all raises ``pa.ArrowInvalid``."""
    names = set(table.column_names)

    def column(name: str) -> tuple[np.ndarray, np.ndarray] | None:
        c = name.replace("-", "_")
        if c not in names:
            return None
        values = table.column(c).cast(pa.int64())
        return (pc.fill_null(values, 0).to_numpy(),
                values.is_null().to_numpy(zero_copy_only=False))

    return column


def clock(now: int | None) -> int:
    return int(time.time()) if now is None else now


def mark(chunk: ParsedChunk, now: int | None = None) -> None:
    """Records of a parsed chunk that cannot be true become ``OUT_OF_RANGE`` with the field;
    ``now`` (epoch s, default the clock) bounds how far in the future a start may be."""
    fmt = chunk.fmt
    long = (chunk.line_end - chunk.line_start) > MAX_LINE_BYTES
    if long.any():  # whatever the parser said of it: the line is not a record
        chunk.status[long] = kernels.LINE_TOO_LONG
        chunk.bad_field[long] = -1

    def column(name: str) -> tuple[np.ndarray, np.ndarray] | None:
        return chunk.int_column(name) if fmt.has(name) else None

    bad, which = out_of_range(column, chunk.n, clock(now))
    bad &= chunk.status == kernels.OK
    if bad.any():
        idx = np.flatnonzero(bad)
        chunk.status[idx] = kernels.OUT_OF_RANGE
        fields = np.array([fmt.fields.index(f) if fmt.has(f) else -1 for f in FIELD_ORDER],
                          np.int16)
        chunk.bad_field[idx] = fields[which[idx]]
