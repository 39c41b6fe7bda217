"""CloudWatch Logs subscription payloads: bounded gunzip, parsing, the encoder."""

from __future__ import annotations

import gzip

import orjson
import pytest

from dredge.decode.cloudwatch import (
    encode_cloudwatch,
    eni_from_log_stream,
    inflate_gzip,
    parse_cloudwatch,
)
from dredge.decode.reasons import EnvelopeError

LINES = [
    b"2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 10.0.2.9 443 49152 6 10 8400 1764000000 1764000060 ACCEPT OK",
    b"2 123456789012 eni-0a1b2c3d4e5f60718 10.0.2.9 10.0.1.5 49152 443 6 12 9120 1764000000 1764000060 REJECT OK",
]


def test_encoded_payload_is_the_subscription_format() -> None:
    data = encode_cloudwatch(
        LINES,
        log_stream="eni-0a1b2c3d4e5f60718-all",
        owner="123456789012",
        timestamp_ms=1764000000000,
    )
    assert data[:2] == b"\x1f\x8b"
    doc = orjson.loads(gzip.decompress(data))
    assert doc["messageType"] == "DATA_MESSAGE"
    assert doc["owner"] == "123456789012"
    assert doc["logStream"] == "eni-0a1b2c3d4e5f60718-all"
    assert isinstance(doc["subscriptionFilters"], list)
    assert [e["message"] for e in doc["logEvents"]] == [line.decode() for line in LINES]
    assert {e["timestamp"] for e in doc["logEvents"]} == {1764000000000}
    assert all(len(e["id"]) == 56 and e["id"].isdigit() for e in doc["logEvents"])
    assert data == encode_cloudwatch(
        LINES,
        log_stream="eni-0a1b2c3d4e5f60718-all",
        owner="123456789012",
        timestamp_ms=1764000000000,
    )


def test_parse_data_message() -> None:
    data = encode_cloudwatch(LINES, log_stream="eni-0a1b2c3d4e5f60718-all", owner="123456789012")
    message = parse_cloudwatch(inflate_gzip(data, 1 << 20))
    assert message.message_type == "DATA_MESSAGE"
    assert message.lines == b"\n".join(LINES)
    assert message.events == 2
    assert message.eni == "eni-0a1b2c3d4e5f60718"
    assert message.log_group == "vpc-flow-logs"


def test_parse_control_message() -> None:
    # The shape CloudWatch Logs sends when it checks the destination
    doc = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 1764000000000,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
            }
        ],
    }
    message = parse_cloudwatch(orjson.dumps(doc))
    assert message.message_type == "CONTROL_MESSAGE"
    assert message.lines == b""
    assert message.eni is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "bad_cwl_json"),
        (b"", "bad_cwl_json"),
        (b"[1, 2]", "bad_cwl_schema"),
        (b'{"logEvents": []}', "bad_cwl_schema"),
        (b'{"messageType": 3}', "bad_cwl_schema"),
        (b'{"messageType": "DATA_MESSAGE", "logEvents": {}}', "bad_cwl_schema"),
        (b'{"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1"}]}', "bad_cwl_schema"),
        (b'{"messageType": "DATA_MESSAGE", "logEvents": [{"message": 5}]}', "bad_cwl_schema"),
        (b'{"messageType": "DATA_MESSAGE", "logEvents": ["x"]}', "bad_cwl_schema"),
        (b'{"messageType": "DATA_MESSAGE", "logStream": 1, "logEvents": []}', "bad_cwl_schema"),
        (b'{"messageType": "SOMETHING_ELSE", "logEvents": []}', "unknown_cwl_message_type"),
    ],
)
def test_parse_refuses(payload: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_cloudwatch(payload)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("log_stream", "eni"),
    [
        ("eni-0a1b2c3d4e5f60718-all", "eni-0a1b2c3d4e5f60718"),
        ("eni-0a1b2c3d-accept", "eni-0a1b2c3d"),
        ("eni-0a1b2c3d4e5f60718", "eni-0a1b2c3d4e5f60718"),
        ("", None),
        ("i-0123456789abcdef0", None),
        ("2025/11/24/[$LATEST]abc", None),
        ("eni-XYZ-all", None),
    ],
)
def test_eni_from_log_stream(log_stream: str, eni: str | None) -> None:
    assert eni_from_log_stream(log_stream) == eni


def test_inflate_round_trip_and_exact_limit() -> None:
    payload = bytes(range(256)) * 1000
    data = gzip.compress(payload)
    assert inflate_gzip(data, len(payload)) == payload
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(data, len(payload) - 1)
    assert info.value.reason == "inflated_too_large"


def test_inflate_multi_member_counts_towards_one_limit() -> None:
    data = gzip.compress(b"a" * 1000) + gzip.compress(b"b" * 1000)
    assert inflate_gzip(data, 2000) == b"a" * 1000 + b"b" * 1000
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(data, 1999)
    assert info.value.reason == "inflated_too_large"


def test_inflate_ignores_trailing_zeros_but_not_garbage() -> None:
    data = gzip.compress(b"x" * 10)
    assert inflate_gzip(data + bytes(8), 100) == b"x" * 10
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(data + b"garbage", 100)
    assert info.value.reason == "corrupt_gzip"


@pytest.mark.parametrize("cut", [3, 10, 30, -4, -1])
def test_inflate_truncated(cut: int) -> None:
    data = gzip.compress(bytes(range(256)) * 100)
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(data[:cut], 1 << 20)
    assert info.value.reason == "truncated_gzip"


def test_inflate_corrupt() -> None:
    data = bytearray(gzip.compress(bytes(range(256)) * 100))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(bytes(data), 1 << 20)
    assert info.value.reason == "corrupt_gzip"
    with pytest.raises(EnvelopeError) as info:
        inflate_gzip(b"\x1f\x8b\x08\x00garbage-that-is-not-deflate", 1 << 20)
    assert info.value.reason == "corrupt_gzip"
