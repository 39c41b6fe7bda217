"""The compiled KPL parser agrees with the Python one (the reference) on every input: valid
aggregates, bad checksums, malformed protobuf, key indices out of range, groups, huge
varints; and decode_records gives the same lines and dead letters either way."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.decode import EnvelopeError, decode_records, encode_cloudwatch, encode_kpl
from dredge.decode import protowire as wire
from dredge.decode.kpl import MAGIC, user_record_spans

from .test_cwlscan import same


def aggregate(body: bytes) -> bytes:
    return MAGIC + body + hashlib.md5(body).digest()


def outcome(data: bytes, fast: bool) -> object:
    try:
        got = user_record_spans(data, fast=fast)
    except EnvelopeError as exc:
        return ("error", exc.reason, str(exc))
    return None if got is None else (got[0].tolist(), got[1].tolist())


def agree(data: bytes) -> object:
    fast = outcome(data, True)
    assert fast == outcome(data, False)
    return fast


def record(pk: int | None, data: bytes | None, ehk: int | None = None, extra: bytes = b"") -> bytes:
    body = b""
    if pk is not None:
        body += wire.varint_field(1, pk)
    if ehk is not None:
        body += wire.varint_field(2, ehk)
    if data is not None:
        body += wire.len_field(3, data)
    return wire.len_field(3, body + extra)


KEYS = wire.len_field(1, b"pk") + wire.len_field(2, b"123")

CASES = {
    "valid": encode_kpl([("a", b"x 1\ny 2"), ("b", b""), ("a", b"z 3")]),
    "explicit hash keys": encode_kpl([("a", b"1"), ("b", b"2")], explicit_hash_keys=["5", None]),
    "bad md5": encode_kpl([("a", b"1")])[:-1] + b"\x00",
    "too short": MAGIC + bytes(16),
    "no records": aggregate(KEYS),
    "pk out of range": aggregate(KEYS + record(1, b"x")),
    "ehk out of range": aggregate(KEYS + record(0, b"x", ehk=1)),
    "huge pk": aggregate(KEYS + record(2**64 - 1, b"x")),
    "no pk": aggregate(KEYS + record(None, b"x")),
    "no data": aggregate(KEYS + record(0, None)),
    "last data wins": aggregate(KEYS + record(0, b"a", extra=wire.len_field(3, b"b"))),
    "unknown fields": aggregate(KEYS + record(0, b"x", extra=wire.varint_field(9, 5) + wire.key(10, 1) + bytes(8)
                                          + wire.key(11, 5) + bytes(4)) + wire.varint_field(7, 1)),
    "group in record": aggregate(KEYS + record(0, b"x", extra=wire.key(4, 3) + wire.key(4, 4))),
    "group at top": aggregate(KEYS + wire.key(5, 3) + wire.varint_field(1, 1) + wire.key(5, 4) + record(0, b"x")),
    "unclosed group": aggregate(KEYS + wire.key(5, 3)),
    "end group alone": aggregate(KEYS + wire.key(5, 4) + record(0, b"x")),
    "field zero": aggregate(KEYS + b"\x00\x00" + record(0, b"x")),
    "wire type 7": aggregate(KEYS + bytes([(9 << 3) | 7]) + record(0, b"x")),
    "truncated varint": aggregate(KEYS + b"\x1a\xff"),
    "varint of 11 bytes": aggregate(KEYS + b"\x08" + b"\xff" * 10 + b"\x01"),
    "length past the end": aggregate(KEYS + b"\x1a\x7f\x08\x00"),
    "huge length": aggregate(KEYS + b"\x1a" + b"\xff" * 9 + b"\x01"),
    "inner length past the record": aggregate(KEYS + wire.len_field(3, b"\x08\x00\x1a\x05ab")),
    "multibyte key": aggregate(KEYS + b"\x9a\x01\x00" + record(0, b"x")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_parsers_agree(name: str) -> None:
    agree(CASES[name])


def test_the_fast_parser_reads_what_it_should() -> None:
    data = CASES["valid"]
    starts, ends = user_record_spans(data) or ([], [])
    assert [data[s:e] for s, e in zip(starts, ends, strict=True)] == [b"x 1\ny 2", b"", b"z 3"]
    assert agree(CASES["bad md5"]) is None
    assert agree(CASES["pk out of range"])[0] == "error"  # type: ignore[index]


def test_batches_agree() -> None:
    cwl = encode_cloudwatch([b"c 1", b"c 2"], log_stream="eni-0abc-all", owner="1")
    records = [*CASES.values(), encode_kpl([("a", cwl), ("b", b"p 1\np 2"), ("c", b"p 3"), ("d", cwl[:-5]),
                                            ("e", encode_kpl([("f", b"nested")]))])]
    batch = same(records)
    assert batch.dead_letters  # the key indices out of range, the truncated gzip


_field = st.one_of(
    st.builds(record, st.integers(0, 3) | st.none(), st.binary(max_size=20) | st.none(),
              st.integers(0, 2) | st.none()),
    st.builds(lambda f, v: wire.varint_field(f, v), st.integers(1, 40), st.integers(0, 2**64 - 1)),
    st.builds(lambda f, b: wire.len_field(f, b), st.integers(1, 3), st.binary(max_size=12)),
    st.builds(lambda f, t: wire.key(f, t), st.integers(0, 12), st.integers(0, 7)),
    st.binary(max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(fields=st.lists(_field, max_size=8))
def test_random_messages_agree(fields: list[bytes]) -> None:
    data = aggregate(KEYS + b"".join(fields))
    agree(data)
    same([data])


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64))
def test_random_bytes_agree(body: bytes) -> None:
    agree(aggregate(body))


@settings(max_examples=100, deadline=None)
@given(users=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.binary(max_size=30)), min_size=1, max_size=10))
def test_random_aggregates_decode_alike(users: list[tuple[str, bytes]]) -> None:
    same([encode_kpl(users), b"plain"])
    assert decode_records([encode_kpl(users)]).stats.kpl == 1
