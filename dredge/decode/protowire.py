"""The protobuf wire format, as much of it as KPL aggregation needs: read and write fields.

A message is a run of fields; each field is a varint key ``field_number << 3 | wire_type``
and a value whose shape the wire type gives:

    0 varint   1 fixed64 (8 bytes)   2 length-delimited (varint length, bytes)
    3 start group / 4 end group (deprecated, skipped)   5 fixed32 (4 bytes)

Readers skip fields they do not know, whatever their wire type, as protobuf itself does;
anything malformed (truncated input, a varint over 10 bytes, field number 0, wire type
6 or 7, an unbalanced group) raises ``WireError``. No protobuf runtime is needed.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LEN = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``buf[pos:end]``; return ``(value, position after it)``."""
    if pos < end and buf[pos] < 0x80:  # one-byte varints are the common case
        return buf[pos], pos + 1
    value = 0
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")
    raise WireError("truncated varint")


def iter_fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, a, b)`` for each field of ``buf[pos:end]``.

    For a length-delimited field ``buf[a:b]`` is its payload; for varint and fixed fields
    ``a`` is the value and ``b`` is 0; groups are skipped and not yielded.
    """
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0")
        if wire_type == LEN:
            length, pos = read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise WireError(f"field {field}: length {length} overruns the message")
            yield field, wire_type, pos, stop
            pos = stop
        elif wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield field, wire_type, value, 0
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                raise WireError(f"field {field}: truncated fixed{size * 8}")
            yield field, wire_type, int.from_bytes(buf[pos : pos + size], "little"), 0
            pos += size
        elif wire_type == START_GROUP:
            pos = _skip_group(buf, pos, end, field)
        else:
            raise WireError(f"field {field}: unexpected wire type {wire_type}")


def skip_field(buf: bytes, pos: int, end: int) -> int:
    """Skip the whole field (key and value) at ``pos``; return the position after it."""
    key, pos = read_varint(buf, pos, end)
    return _skip_value(buf, pos, end, key >> 3, key & 7)


def _skip_value(buf: bytes, pos: int, end: int, field: int, wire_type: int) -> int:
    if field == 0:
        raise WireError("field number 0")
    if wire_type == VARINT:
        return read_varint(buf, pos, end)[1]
    if wire_type == LEN:
        length, pos = read_varint(buf, pos, end)
        stop = pos + length
    elif wire_type in (FIXED64, FIXED32):
        stop = pos + (8 if wire_type == FIXED64 else 4)
    elif wire_type == START_GROUP:
        return _skip_group(buf, pos, end, field)
    else:
        raise WireError(f"field {field}: unexpected wire type {wire_type}")
    if stop > end:
        raise WireError(f"field {field}: value overruns the message")
    return stop


def _skip_group(buf: bytes, pos: int, end: int, group: int) -> int:
    """Return the position after the END_GROUP that closes ``group``."""
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        if wire_type == END_GROUP:
            if field != group:
                raise WireError(f"group {group} closed by end of group {field}")
            return pos
        pos = _skip_value(buf, pos, end, field, wire_type)
    raise WireError(f"group {group} not closed")


def encode_varint(value: int) -> bytes:
    """The varint encoding of an unsigned 64-bit integer."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    """The encoded key of a field."""
    return encode_varint(field << 3 | wire_type)


def len_field(field: int, payload: bytes) -> bytes:
    """A whole length-delimited field: key, length, payload."""
    return key(field, LEN) + encode_varint(len(payload)) + payload


def varint_field(field: int, value: int) -> bytes:
    """A whole varint field: key and value."""
    return key(field, VARINT) + encode_varint(value)
