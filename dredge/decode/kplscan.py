"""The fast path for KPL aggregates: the ``AggregatedRecord`` protobuf parsed by one compiled
pass into arrays of user-record spans, and runs of plain user records gathered into one
buffer, without a Python object per user record.

``spans(data, end)`` reads ``data[4:end]`` exactly as ``kpl._parse_aggregated_record`` does
(the same fields, the same proto2 "last one wins", the same errors) and returns the
partition-key and hash-key table sizes and, per user record, its key indices and the span of
its data. It hands over (``None``) to the Python parser only for a group (wire types 3/4,
deprecated, never written by the KPL), so every answer is the reference parser's.
``gather`` joins spans with ``b"\\n"``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from numba import njit

OK = 0
MALFORMED = 1  # the reference parser raises WireError: the record is not an aggregate
GROUP = 2  # a group: left to the reference parser

_KEY_PARTITION_KEY_TABLE = 0x0A
_KEY_EXPLICIT_HASH_KEY_TABLE = 0x12
_KEY_RECORDS = 0x1A
_KEY_PARTITION_KEY_INDEX = 0x08
_KEY_EXPLICIT_HASH_KEY_INDEX = 0x10
_KEY_DATA = 0x1A


@njit(cache=True, nogil=True)
def _varint(buf: np.ndarray, pos: int, end: int) -> tuple[np.uint64, int]:
    """(value, position after it), or position -1 when truncated or longer than 10 bytes."""
    value = np.uint64(0)
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        if shift < 64:
            value |= np.uint64(byte & 0x7F) << np.uint64(shift)
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            return value, -1
    return value, -1


@njit(cache=True, nogil=True)
def _after(pos: int, length: np.uint64, end: int) -> int:
    """``pos + length`` if it stays within ``end``, else -1 (no overflow)."""
    if length > np.uint64(end - pos):
        return -1
    return pos + int(length)


@njit(cache=True, nogil=True)
def _skip_field(buf: np.ndarray, pos: int, end: int) -> int:
    """The position after the whole field at ``pos``; -1 malformed, -2 a group."""
    key, pos = _varint(buf, pos, end)
    if pos < 0:
        return -1
    field, wire_type = key >> np.uint64(3), int(key & np.uint64(7))
    if field == 0:
        return -1
    if wire_type == 0:
        return _varint(buf, pos, end)[1]
    if wire_type == 2:
        length, pos = _varint(buf, pos, end)
        return -1 if pos < 0 else _after(pos, length, end)
    if wire_type == 1 or wire_type == 5:
        return _after(pos, np.uint64(8 if wire_type == 1 else 4), end)
    if wire_type == 3:
        return -2
    return -1


@njit(cache=True, nogil=True)
def _record(buf: np.ndarray, pos: int, end: int) -> tuple[int, np.uint64, np.uint64, bool, int, int]:
    """One ``Record``: (status, partition key index, hash key index, has one, data span)."""
    zero = np.uint64(0)
    pk, ehk = zero, zero
    has_pk = has_ehk = False
    data_start = data_end = -1
    while pos < end:
        key = buf[pos]
        if key == _KEY_DATA:
            length, start = _varint(buf, pos + 1, end)
            if start < 0:
                return MALFORMED, zero, zero, False, 0, 0
            pos = _after(start, length, end)
            if pos < 0:
                return MALFORMED, zero, zero, False, 0, 0
            data_start, data_end = start, pos
        elif key == _KEY_PARTITION_KEY_INDEX or key == _KEY_EXPLICIT_HASH_KEY_INDEX:  # noqa: SIM109
            value, pos = _varint(buf, pos + 1, end)
            if pos < 0:
                return MALFORMED, zero, zero, False, 0, 0
            if key == _KEY_PARTITION_KEY_INDEX:
                pk, has_pk = value, True
            else:
                ehk, has_ehk = value, True
        else:
            pos = _skip_field(buf, pos, end)
            if pos < 0:
                return (GROUP if pos == -2 else MALFORMED), zero, zero, False, 0, 0
    if not has_pk or data_start < 0:
        return MALFORMED, zero, zero, False, 0, 0
    return OK, pk, ehk, has_ehk, data_start, data_end


@njit(cache=True, nogil=True)
def _aggregate(buf: np.ndarray, pos: int, end: int, pk: np.ndarray, ehk: np.ndarray,
               has_ehk: np.ndarray, starts: np.ndarray, ends: np.ndarray
               ) -> tuple[int, int, int, int]:
    """(status, user records, partition keys, explicit hash keys) of ``buf[pos:end]``."""
    n = n_pk = n_ehk = 0
    while pos < end:
        key = buf[pos]
        if key in (_KEY_RECORDS, _KEY_PARTITION_KEY_TABLE, _KEY_EXPLICIT_HASH_KEY_TABLE):
            length, start = _varint(buf, pos + 1, end)
            if start < 0:
                return MALFORMED, 0, 0, 0
            pos = _after(start, length, end)
            if pos < 0:
                return MALFORMED, 0, 0, 0
            if key == _KEY_RECORDS:
                if n == pk.shape[0]:
                    return GROUP, 0, 0, 0  # cannot happen (a record takes >= 6 bytes); be safe
                status, p, h, has_h, s, e = _record(buf, start, pos)
                if status != OK:
                    return status, 0, 0, 0
                pk[n], ehk[n], has_ehk[n], starts[n], ends[n] = p, h, has_h, s, e
                n += 1
            elif key == _KEY_PARTITION_KEY_TABLE:
                n_pk += 1
            else:
                n_ehk += 1
        else:
            pos = _skip_field(buf, pos, end)
            if pos < 0:
                return (GROUP if pos == -2 else MALFORMED), 0, 0, 0
    return OK, n, n_pk, n_ehk


Spans = tuple[int, int, npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.bool_],
              npt.NDArray[np.int64], npt.NDArray[np.int64]]


def spans(data: bytes, end: int) -> Spans | Literal[False] | None:
    """The parse of ``data[4:end]``: ``(partition keys, hash keys, pk index, ehk index, has
    ehk, data starts, data ends)``; ``False`` when malformed; ``None``: ask the reference."""
    buf = np.frombuffer(data, np.uint8)
    cap = max(1, (end - 4) // 6 + 1)
    pk = np.empty(cap, np.uint64)
    ehk = np.empty(cap, np.uint64)
    has_ehk = np.empty(cap, np.bool_)
    starts = np.empty(cap, np.int64)
    ends = np.empty(cap, np.int64)
    status, n, n_pk, n_ehk = _aggregate(buf, 4, end, pk, ehk, has_ehk, starts, ends)
    if status == GROUP:
        return None
    if status == MALFORMED:
        return False
    return n_pk, n_ehk, pk[:n], ehk[:n], has_ehk[:n], starts[:n], ends[:n]


@njit(cache=True, nogil=True)
def _gather(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, out: np.ndarray) -> None:
    o = 0
    for r in range(starts.shape[0]):
        if r:
            out[o] = 10
            o += 1
        for j in range(starts[r], ends[r]):
            out[o] = buf[j]
            o += 1


def gather(data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> bytes:
    """``b"\\n".join(data[s:e] for s, e in zip(starts, ends))``, compiled."""
    out = np.empty(int((ends - starts).sum()) + max(0, starts.size - 1), np.uint8)
    _gather(np.frombuffer(data, np.uint8), starts, ends, out)
    return out.tobytes()
