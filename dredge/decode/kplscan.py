"""The fast path for KPL aggregates: the ``AggregatedRecord`` protobuf parsed by one compiled
pass into arrays of user-record spans, and runs of plain user records gathered into one
buffer, without a Python object per user record.

``spans(data, end)`` reads ``data[4:end]`` exactly as ``kpl._parse_aggregated_record`` does
(the same fields, the same proto2 "last one wins", the same errors) and returns the
partition-key and hash-key table sizes and, per user record, its key indices and the span of
its data. It hands over (``None``) to the Python parser only for a group (wire types 3/4,
deprecated, never written by the KPL), so every answer is the reference parser's.
``gather`` joins spans with ``b"\\n"``. Both passes are C (``kpl_spans`` and ``kpl_gather``
in ``_native.c``, without the GIL); this module allocates their outputs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from dredge.decode import _native

OK = 0
MALFORMED = 1  # the reference parser raises WireError: the record is not an aggregate
GROUP = 2  # a group: left to the reference parser

Spans = tuple[int, int, npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.bool_],
              npt.NDArray[np.int64], npt.NDArray[np.int64]]


def spans(data: bytes, end: int) -> Spans | Literal[False] | None:
    """The parse of ``data[4:end]``: ``(partition keys, hash keys, pk index, ehk index, has
    ehk, data starts, data ends)``; ``False`` when malformed; ``None``: ask the reference."""
    cap = max(1, (end - 4) // 6 + 1)
    pk = np.empty(cap, np.uint64)
    ehk = np.empty(cap, np.uint64)
    has_ehk = np.empty(cap, np.bool_)
    starts = np.empty(cap, np.int64)
    ends = np.empty(cap, np.int64)
    status, n, n_pk, n_ehk = _native.kpl_spans(data, end, pk, ehk, has_ehk, starts, ends)
    if status == GROUP:
        return None
    if status == MALFORMED:
        return False
    return n_pk, n_ehk, pk[:n], ehk[:n], has_ehk[:n], starts[:n], ends[:n]


def gather(data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> bytes:
    """``b"\\n".join(data[s:e] for s, e in zip(starts, ends))``, compiled."""
    starts = np.ascontiguousarray(starts, np.int64)
    ends = np.ascontiguousarray(ends, np.int64)
    out = np.empty(int((ends - starts).sum()) + max(0, starts.size - 1), np.uint8)
    _native.kpl_gather(data, starts, ends, out)
    return out.tobytes()
