"""The compiled CloudWatch Logs scan gives exactly the reference path's lines and dead letters:
on the shape CloudWatch Logs writes (where it must take the fast path) and on everything else
(where it must hand over to orjson), including malformed envelopes and bad gzip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zlib_ng import zlib_ng

from dredge.decode import DecodedBatch, decode_records, encode_cloudwatch, encode_kpl
from dredge.decode.cwlscan import scan

OWNER = "123456789012"
ENI = "eni-0a1b2c3d4e5f60718"
LINE = "2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 10.0.2.9 443 40000 6 10 8400 1764000000 1764000060 ACCEPT OK"


def gz(doc: bytes | str) -> bytes:
    raw = doc.encode() if isinstance(doc, str) else doc
    deflater = zlib_ng.compressobj(6, zlib_ng.DEFLATED, 31)
    return deflater.compress(raw) + deflater.flush()


def inflated(data: bytes) -> bytes:
    return zlib_ng.decompress(data, 47)


def same(records: list[bytes]) -> DecodedBatch:
    """decode_records on the fast and on the reference path: every field equal."""
    fast, ref = decode_records(records), decode_records(records, fast=False)
    assert fast.lines == ref.lines
    for name in ("line_record", "line_subseq", "line_eni"):
        assert getattr(fast, name).tolist() == getattr(ref, name).tolist()
    assert fast.eni_table == ref.eni_table
    assert fast.control_messages == ref.control_messages
    assert fast.dead_letters == ref.dead_letters
    assert fast.stats == ref.stats
    return fast


def doc(events: object = None, **top: object) -> str:
    body: dict[str, object] = {"messageType": "DATA_MESSAGE", "owner": OWNER,
                               "logGroup": "vpc-flow-logs", "logStream": f"{ENI}-all",
                               "subscriptionFilters": ["dredge"]}
    body["logEvents"] = events if events is not None else [
        {"id": "1", "timestamp": 1764000000000, "message": LINE}]
    body.update(top)
    return json.dumps(body, separators=(",", ":"))


def test_the_shape_cloudwatch_writes_takes_the_fast_path() -> None:
    lines = [LINE.encode(), b"  padded  ", b"", b"   ", LINE.encode()]
    data = encode_cloudwatch(lines, log_stream=f"{ENI}-all", owner=OWNER)
    got = scan(inflated(data))
    assert got == (True, b"\n".join([LINE.encode(), b"padded", LINE.encode()]), 3, f"{ENI}-all")
    batch = same([data])
    assert batch.line_list() == [LINE.encode(), b"padded", LINE.encode()]
    assert batch.eni_table == [ENI]


def test_control_message_fast() -> None:
    data = encode_cloudwatch([b"CWL CONTROL MESSAGE"], log_stream="", owner="CloudwatchLogs",
                             message_type="CONTROL_MESSAGE")
    got = scan(inflated(data))
    assert got is not None and got[0] is False
    assert same([data]).control_messages == 1


FAST = [
    doc(),
    doc(events=[]),
    '{"logEvents":[{"message":"a b","timestamp":-0,"id":"x"}],"messageType":"DATA_MESSAGE"}',
    ' { "messageType" : "DATA_MESSAGE" , "logEvents" : [ { "message" : "x" } , {"message":""} ] } ',
    doc(logStream="not-an-eni"),
    doc(subscriptionFilters=[]),
]

SLOW = [  # valid or not, each of these must be left to the reference path
    doc(events=[{"id": "1", "message": "tab\there"}]),
    doc(events=[{"message": 'quote " and backslash \\'}]),
    doc(events=[{"message": "caf\u00e9"}]).replace("\\u00e9", "\u00e9"),
    doc(events=[{"message": "x", "timestamp": 1.5}]),
    doc(events=[{"message": "x", "timestamp": 1e3}]),
    doc(events=[{"message": "x", "timestamp": 10**19}]),
    doc(events=[{"message": "x", "extra": True}]),
    doc(events=[{"message": 5}]),
    doc(events=[{"id": "1"}]),
    doc(events=[["x"]]),
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"a","message":"b"}]}',
    doc(messageType="MYSTERY"),
    doc(messageType=7),
    doc(owner=None),
    doc(logEvents={"message": "x"}),
    doc(subscriptionFilters="dredge"),
    doc(subscriptionFilters=[1]),
    doc(unknown=1),
    '{"messageType":"DATA_MESSAGE","messageType":"DATA_MESSAGE"}',
    '{"logEvents":[]}',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x"}]} trailing',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x"},]}',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x"}]',
    '{"messageType":"DATA_MESSAGE",}',
    '{"messageType":"DATA_MESSAGE"\n,"logEvents":[{"message":"x"}]}',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x","timestamp":01}]}',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x","timestamp":-}]}',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x\x01"}]}',
    "[]",
    "",
    "null",
    '"DATA_MESSAGE"',
    '{"messageType":"DATA_MESSAGE","logEvents":[{"message":"\xff"}]}',
]


@pytest.mark.parametrize("text", FAST)
def test_fast_shapes(text: str) -> None:
    assert scan(text.encode()) is not None
    same([gz(text)])


@pytest.mark.parametrize("text", SLOW)
def test_everything_else_is_left_to_the_reference_path(text: str) -> None:
    raw = text.encode("latin-1") if "\xff" in text else text.encode()
    assert scan(raw) is None
    same([gz(raw)])


def test_bad_gzip_and_mixed_batches_agree() -> None:
    good = encode_cloudwatch([LINE.encode()] * 3, log_stream=f"{ENI}-all", owner=OWNER)
    records = [
        good,
        good[:-9],  # truncated gzip
        good[:12] + bytes(len(good) - 12),  # corrupt
        gz("not json"),
        gz(doc(messageType="MYSTERY")),
        b"plain 1\nplain 2",
        encode_kpl([("a", good), ("b", b"user line"), ("c", gz("[1]"))]),
        good,
    ]
    batch = same(records)
    assert len(batch.dead_letters) == 5
    assert len(batch) == 3 + 2 + 3 + 1 + 3


_text = st.text(st.sampled_from(list('ab 19."\\\t\r-é')), max_size=12)
_events = st.lists(st.fixed_dictionaries(
    {"message": _text}, optional={"id": st.text("0123456789", max_size=8),
                                  "timestamp": st.integers(-(2**63), 2**64)}), max_size=6)


@settings(max_examples=300, deadline=None)
@given(events=_events, message_type=st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE", "X"]),
       stream=st.sampled_from([f"{ENI}-all", ENI, "other", ""]), order=st.permutations(range(4)),
       space=st.sampled_from(["", " ", "\n"]))
def test_any_envelope_agrees(events: list[dict[str, object]], message_type: str, stream: str,
                             order: list[int], space: str) -> None:
    parts = [("messageType", message_type), ("logStream", stream), ("logEvents", events),
             ("subscriptionFilters", ["f"])]
    body = {k: v for k, v in (parts[i] for i in order)}
    text = json.dumps(body, ensure_ascii=False, separators=("," + space, ":" + space))
    same([gz(text.encode())])


_TOKENS = ['{', '}', '[', ']', ':', ',', ' ', '\n', '"', '"messageType"', '"logStream"', '"logEvents"',
           '"subscriptionFilters"', '"id"', '"timestamp"', '"message"', '"DATA_MESSAGE"', '"x y"', '" a "',
           '""', '0', '-', '12', '1234567890123456789', '1.5', 'e', '\\', '\x01', '\xff', '\x7f']


@st.composite
def _hostile_documents(draw: st.DrawFn) -> bytes:
    """A valid envelope cut, or with bytes swapped for JSON punctuation, or a run of tokens."""
    if draw(st.booleans()):
        return "".join(draw(st.lists(st.sampled_from(_TOKENS), max_size=40))).encode("latin-1")
    text = bytearray(doc(events=draw(_events)).encode())
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text) - 1))
        if draw(st.booleans()):
            text[i] = draw(st.sampled_from(b'{}[]:," \\'))
        else:
            del text[i:]
            break
    return bytes(text)


@settings(max_examples=300, deadline=None)
@given(raw=_hostile_documents())
def test_broken_documents_agree(raw: bytes) -> None:
    same([gz(raw)])
