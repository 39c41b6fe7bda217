"""KPL aggregated records: recognise, unpack and build them (no protobuf dependency).

The Kinesis Producer Library packs many user records into one Kinesis record::

    F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf bytes), 16 bytes

    message AggregatedRecord {                  // proto2
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;  // {key = 1; value = 2}: unused, skipped
    }

(awslabs/amazon-kinesis-producer, aggregation-format.md.) ``encode_kpl`` writes the same
bytes as the reference ``aws_kinesis_agg`` aggregator; the tests pin one of its outputs.

How the KCL decides (``software.amazon.kinesis.retrieval.AggregatorUtil.deaggregate``; the
``aws_kinesis_agg`` Python deaggregator does the same): a record is an aggregate when it
starts with the 4 magic bytes, *more than* 16 bytes follow them, the last 16 bytes equal
the MD5 of the bytes between magic and digest, and those bytes parse as an
``AggregatedRecord`` (required fields present). If any check fails the record is handed on
unchanged, as a plain record with sub-sequence number 0. Otherwise each user record gets
the Kinesis record's sequence number and a sub-sequence number counting 0, 1, 2, ... in
the order of the ``records`` field; the pair (sequence number, sub-sequence number) is what
the KCL checkpoints.

Differences from the KCL, on purpose:

- Given the shard's hash-key range, the KCL drops a whole aggregate as soon as one user
  record's effective hash key (the explicit hash key, else the MD5 of the partition key)
  falls outside it; Dredge does not filter by hash key and keeps every user record.
- A valid aggregate whose user record points outside a key table makes the KCL log an
  error and drop the rest of that aggregate; here ``deaggregate`` raises
  ``EnvelopeError("kpl_bad_key_index")`` and the whole record is dead-lettered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from dredge.decode import kplscan
from dredge.decode import protowire as wire
from dredge.decode.reasons import EnvelopeError

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE = 16

# Keys (field number << 3 | wire type) of the fields read; all fit in one byte.
_KEY_PARTITION_KEY_TABLE = 1 << 3 | wire.LEN  # AggregatedRecord
_KEY_EXPLICIT_HASH_KEY_TABLE = 2 << 3 | wire.LEN
_KEY_RECORDS = 3 << 3 | wire.LEN
_KEY_PARTITION_KEY_INDEX = 1 << 3 | wire.VARINT  # Record
_KEY_EXPLICIT_HASH_KEY_INDEX = 2 << 3 | wire.VARINT
_KEY_DATA = 3 << 3 | wire.LEN


class UserRecord(NamedTuple):
    """One user record unpacked from an aggregate; its sub-sequence number is its position."""

    partition_key: str
    explicit_hash_key: str | None
    data: bytes


def looks_aggregated(data: bytes) -> bool:
    """The cheap half of the KCL test: magic bytes, and more than a digest after them."""
    return data[:4] == MAGIC and len(data) > len(MAGIC) + DIGEST_SIZE


def deaggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of a KPL aggregate, in sub-sequence order; ``None`` if ``data`` is not one.

    ``None`` (the record is to be read as a plain record) when the magic, the MD5 or the
    protobuf parse fails, exactly as the KCL decides. Raises ``EnvelopeError`` for an
    aggregate that is valid protobuf but points outside its key tables.
    """
    parsed = _open(data)
    if parsed is None:
        return None
    pk_table, ehk_table, records = parsed
    partition_keys = [data[a:b].decode("utf-8", "replace") for a, b in pk_table]
    hash_keys = [data[a:b].decode("utf-8", "replace") for a, b in ehk_table]
    return [
        UserRecord(partition_keys[pk], None if ehk is None else hash_keys[ehk], data[a:b])
        for pk, ehk, a, b in records
    ]


def user_record_data(data: bytes) -> list[bytes] | None:
    """Only the data of each user record, without decoding keys: the hot path.

    Same decision and errors as ``deaggregate``.
    """
    parsed = _open(data)
    if parsed is None:
        return None
    return [data[a:b] for _, _, a, b in parsed[2]]


def user_record_spans(data: bytes, *, fast: bool = True
                      ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Where each user record's data starts and ends in ``data``: the hot path, no Python
    object per user record (``kplscan``; ``fast=False``: the Python parser, the reference).

    Same decision and errors as ``deaggregate``.
    """
    if not looks_aggregated(data):
        return None
    end = len(data) - DIGEST_SIZE
    if hashlib.md5(memoryview(data)[4:end]).digest() != data[end:]:
        return None
    parsed = kplscan.spans(data, end) if fast else None
    if parsed is None:  # the reference parser (also for the groups kplscan leaves to it)
        opened = _open(data)
        if opened is None:
            return None
        spans = np.array([(a, b) for _, _, a, b in opened[2]], np.int64).reshape(-1, 2)
        return spans[:, 0].copy(), spans[:, 1].copy()
    if parsed is False:
        return None
    n_pk, n_ehk, pk, ehk, has_ehk, starts, ends = parsed
    if (pk >= n_pk).any() or (has_ehk & (ehk >= n_ehk)).any():
        raise _bad_key_index(n_pk, n_ehk)
    return starts, ends


def _bad_key_index(n_pk: int, n_ehk: int) -> EnvelopeError:
    return EnvelopeError(
        "kpl_bad_key_index",
        f"a user record points outside the key tables "
        f"({n_pk} partition keys, {n_ehk} explicit hash keys)",
    )


_Span = tuple[int, int]
_RecordSpan = tuple[int, int | None, int, int]  # partition key index, hash key index, data span
_Parsed = tuple[list[_Span], list[_Span], list[_RecordSpan]]


def _open(data: bytes) -> _Parsed | None:
    """Check magic, MD5 and protobuf as the KCL does; then check the key indices."""
    if not looks_aggregated(data):
        return None
    end = len(data) - DIGEST_SIZE
    if hashlib.md5(memoryview(data)[4:end]).digest() != data[end:]:
        return None
    try:
        parsed = _parse_aggregated_record(data, 4, end)
    except wire.WireError:
        return None
    n_pk, n_ehk = len(parsed[0]), len(parsed[1])
    for pk, ehk, _, _ in parsed[2]:
        if pk >= n_pk or (ehk is not None and ehk >= n_ehk):
            raise _bad_key_index(n_pk, n_ehk)
    return parsed


def _parse_aggregated_record(buf: bytes, pos: int, end: int) -> _Parsed:
    """Parse an ``AggregatedRecord`` into spans of ``buf``; raise ``WireError`` if malformed.

    The loop is written out (no field iterator) because an aggregate may hold thousands
    of user records. A key byte below 0x80 is a whole key, so comparing one byte is exact;
    any other field, including a known number with an unexpected wire type, is skipped.
    """
    read_varint = wire.read_varint
    pk_table: list[_Span] = []
    ehk_table: list[_Span] = []
    records: list[_RecordSpan] = []
    while pos < end:
        key = buf[pos]
        if key in (_KEY_RECORDS, _KEY_PARTITION_KEY_TABLE, _KEY_EXPLICIT_HASH_KEY_TABLE):
            if pos + 1 < end and buf[pos + 1] < 0x80:  # a one-byte length, inline: the usual case
                length, start = buf[pos + 1], pos + 2
            else:
                length, start = read_varint(buf, pos + 1, end)
            pos = start + length
            if pos > end:
                raise wire.WireError("a field overruns the AggregatedRecord")
            if key == _KEY_RECORDS:
                records.append(_parse_record(buf, start, pos))
            elif key == _KEY_PARTITION_KEY_TABLE:
                pk_table.append((start, pos))
            else:
                ehk_table.append((start, pos))
        else:
            pos = wire.skip_field(buf, pos, end)
    return pk_table, ehk_table, records


def _parse_record(buf: bytes, pos: int, end: int) -> _RecordSpan:
    read_varint = wire.read_varint
    pk: int | None = None
    ehk: int | None = None
    data_start = data_end = -1
    while pos < end:
        key = buf[pos]
        if key == _KEY_DATA:  # proto2: the last occurrence of a singular field wins
            length, data_start = read_varint(buf, pos + 1, end)
            pos = data_end = data_start + length
            if pos > end:
                raise wire.WireError("Record data overruns the Record")
        elif key == _KEY_PARTITION_KEY_INDEX:
            if pos + 1 < end and buf[pos + 1] < 0x80:
                pk, pos = buf[pos + 1], pos + 2
            else:
                pk, pos = read_varint(buf, pos + 1, end)
        elif key == _KEY_EXPLICIT_HASH_KEY_INDEX:
            ehk, pos = read_varint(buf, pos + 1, end)
        else:
            pos = wire.skip_field(buf, pos, end)
    if pk is None or data_start < 0:
        raise wire.WireError("Record lacks a required field (partition_key_index or data)")
    return pk, ehk, data_start, data_end


def encode_kpl(
    records: Sequence[tuple[str, bytes]],
    *,
    explicit_hash_keys: Sequence[str | None] | None = None,
) -> bytes:
    """One KPL aggregated record holding ``(partition_key, data)`` user records, in order.

    Keys are stored once each in the key tables, as the KPL does. ``explicit_hash_keys``,
    when given, has one entry (a decimal string or ``None``) per record. The result is not
    checked against the Kinesis record size limit. At least one record is needed: an
    empty aggregate is only 16 bytes after the magic, which the KCL reads as a plain record.
    """
    if not records:
        raise ValueError("an aggregate needs at least one user record")
    if explicit_hash_keys is not None and len(explicit_hash_keys) != len(records):
        raise ValueError("explicit_hash_keys must have one entry per record")
    pk_index: dict[str, int] = {}
    ehk_index: dict[str, int] = {}
    body: list[bytes] = []
    for i, (partition_key, data) in enumerate(records):
        # Record: partition_key_index = 1, explicit_hash_key_index = 2, data = 3
        record = wire.varint_field(1, pk_index.setdefault(partition_key, len(pk_index)))
        ehk = None if explicit_hash_keys is None else explicit_hash_keys[i]
        if ehk is not None:
            record += wire.varint_field(2, ehk_index.setdefault(ehk, len(ehk_index)))
        record += wire.len_field(3, bytes(data))
        body.append(wire.len_field(3, record))
    # AggregatedRecord: partition_key_table = 1, explicit_hash_key_table = 2, records = 3
    message = b"".join(
        [wire.len_field(1, k.encode()) for k in pk_index]
        + [wire.len_field(2, k.encode()) for k in ehk_index]
        + body
    )
    return MAGIC + message + hashlib.md5(message).digest()
