"""The hand-rolled protobuf wire reader and writer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dredge.decode import protowire as wire


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = wire.encode_varint(value)
    assert wire.read_varint(encoded, 0, len(encoded)) == (value, len(encoded))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    # 300 = 0b10_0101100 -> 1010_1100 0000_0010, the example of the protobuf encoding guide
    assert wire.encode_varint(value) == encoded


def test_varint_out_of_range() -> None:
    with pytest.raises(ValueError):
        wire.encode_varint(-1)
    with pytest.raises(ValueError):
        wire.encode_varint(2**64)


@pytest.mark.parametrize("bad", [b"\x80", b"\xff\xff", b"\xff" * 11])
def test_varint_truncated_or_too_long(bad: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.read_varint(bad, 0, len(bad))


def test_iter_fields_reads_every_wire_type_and_skips_groups() -> None:
    message = (
        b"\x08\x96\x01"  # field 1 varint 150
        + b"\x11"
        + (7).to_bytes(8, "little")  # field 2 fixed64 7
        + b"\x1a\x03abc"  # field 3 length-delimited "abc"
        + b"\x23"
        + b"\x08\x01"
        + b"\x2b\x2c"
        + b"\x24"  # field 4 group holding a nested group 5
        + b"\x2d"
        + (9).to_bytes(4, "little")  # field 5 fixed32 9
    )
    fields = list(wire.iter_fields(message, 0, len(message)))
    a, b = fields[2][2], fields[2][3]
    assert fields == [(1, 0, 150, 0), (2, 1, 7, 0), (3, 2, a, b), (5, 5, 9, 0)]
    assert message[a:b] == b"abc"


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x01",  # field number 0
        b"\x0e",  # wire type 6
        b"\x0f",  # wire type 7
        b"\x0a\x05abc",  # length overruns the message
        b"\x09\x01\x02",  # truncated fixed64
        b"\x0d\x01",  # truncated fixed32
        b"\x0b\x08\x01",  # group never closed
        b"\x0b\x14",  # group 1 closed by end of group 2
        b"\x0c",  # end group without a start
    ],
)
def test_iter_fields_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(wire.WireError):
        list(wire.iter_fields(bad, 0, len(bad)))


def test_field_writers() -> None:
    assert wire.key(3, wire.LEN) == b"\x1a"
    assert wire.len_field(1, b"pk") == b"\x0a\x02pk"
    assert wire.varint_field(2, 300) == b"\x10\xac\x02"
