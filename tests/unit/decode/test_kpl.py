"""KPL aggregates: the golden bytes of the published format, the KCL's decision, the encoder."""

from __future__ import annotations

import hashlib

import pytest

from dredge.decode import kpl
from dredge.decode.kpl import UserRecord, deaggregate, encode_kpl, user_record_data
from dredge.decode.reasons import EnvelopeError

# From awslabs/amazon-kinesis-producer aggregation-format.md:
#   message AggregatedRecord { repeated string partition_key_table = 1;
#                              repeated string explicit_hash_key_table = 2;
#                              repeated Record records = 3; }
#   message Record { required uint64 partition_key_index = 1;
#                    optional uint64 explicit_hash_key_index = 2;
#                    required bytes data = 3; repeated Tag tags = 4; }
# key byte = field_number << 3 | wire_type; wire type 0 = varint, 2 = length-delimited.
PK_TABLE = 0x0A  # field 1, wire type 2
EHK_TABLE = 0x12  # field 2, wire type 2
RECORDS = 0x1A  # field 3, wire type 2
R_PK_INDEX = 0x08  # Record field 1, wire type 0
R_EHK_INDEX = 0x10  # Record field 2, wire type 0
R_DATA = 0x1A  # Record field 3, wire type 2
R_TAGS = 0x22  # Record field 4, wire type 2
TAG_KEY, TAG_VALUE = 0x0A, 0x12

LINE_A = b"2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 10.0.2.9 443 49152 6 10 8400 1764000000 1764000060 ACCEPT OK"
LINE_B = b"2 123456789012 eni-0a1b2c3d4e5f60718 10.0.2.9 10.0.1.5 49152 443 6 12 9120 1764000000 1764000060 ACCEPT OK"
EHK = b"170141183460469231731687303715884105728"  # 2**127


def aggregate(message: bytes) -> bytes:
    return b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()


def golden_message() -> bytes:
    record_0 = bytes([R_PK_INDEX, 1, R_DATA, len(LINE_A)]) + LINE_A
    data_1 = LINE_A + b"\n" + LINE_B  # 213 bytes: its length is a two-byte varint
    assert len(data_1) == 213
    tag = bytes([TAG_KEY, 1]) + b"k" + bytes([TAG_VALUE, 1]) + b"v"
    record_1 = (
        bytes([R_PK_INDEX, 0, R_EHK_INDEX, 0, R_DATA, 0xD5, 0x01])  # 213 = 0x55 | 0x80, 1 << 7
        + data_1
        + bytes([R_TAGS, len(tag)])
        + tag
    )
    assert len(record_1) == 228
    return (
        bytes([PK_TABLE, 4]) + b"pk-a"
        + bytes([PK_TABLE, 4]) + b"pk-b"
        + bytes([EHK_TABLE, len(EHK)]) + EHK
        + bytes([RECORDS, len(record_0)]) + record_0
        + bytes([RECORDS, 0xE4, 0x01]) + record_1  # 228 = 0x64 | 0x80, 1 << 7
    )  # fmt: skip


def test_golden_aggregate_from_the_spec() -> None:
    message = golden_message()
    assert len(golden_message()) > 250
    assert deaggregate(aggregate(message)) == [
        UserRecord("pk-b", None, LINE_A),
        UserRecord("pk-a", EHK.decode(), LINE_A + b"\n" + LINE_B),
    ]


def test_encoder_writes_the_spec_bytes() -> None:
    message = (
        bytes([PK_TABLE, 4]) + b"pk-a"
        + bytes([PK_TABLE, 4]) + b"pk-b"
        + bytes([RECORDS, 4, R_PK_INDEX, 0, R_DATA, 0])
        + bytes([RECORDS, 6, R_PK_INDEX, 1, R_DATA, 2]) + b"xy"
        + bytes([RECORDS, 6, R_PK_INDEX, 0, R_DATA, 2]) + b"zz"
    )  # fmt: skip
    assert encode_kpl([("pk-a", b""), ("pk-b", b"xy"), ("pk-a", b"zz")]) == aggregate(message)


def test_round_trip_with_explicit_hash_keys() -> None:
    records = [("a", b"1"), ("b", b"2"), ("a", b"3")]
    data = encode_kpl(records, explicit_hash_keys=["7", None, "7"])
    assert deaggregate(data) == [
        UserRecord("a", "7", b"1"),
        UserRecord("b", None, b"2"),
        UserRecord("a", "7", b"3"),
    ]
    assert user_record_data(data) == [b"1", b"2", b"3"]
    with pytest.raises(ValueError):
        encode_kpl(records, explicit_hash_keys=["7"])
    with pytest.raises(ValueError):
        encode_kpl([])  # would be read back as a plain record


def test_empty_aggregate_is_still_an_aggregate() -> None:
    # A message with one empty partition key is the smallest aggregate with > 16 bytes after the magic
    assert deaggregate(aggregate(bytes([PK_TABLE, 0]))) == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xf3\x89\x9a",  # shorter than the magic
        b"\xf3\x89\x9a\xc2" + hashlib.md5(b"").digest(),  # exactly 16 bytes after the magic
        b"2 123456789012 eni-0a1b2c3d ... plain line",
    ],
)
def test_not_aggregated(data: bytes) -> None:
    assert deaggregate(data) is None
    assert user_record_data(data) is None


def test_bad_md5_is_not_aggregated() -> None:
    data = bytearray(encode_kpl([("a", b"line")]))
    data[-1] ^= 0xFF
    assert deaggregate(bytes(data)) is None


@pytest.mark.parametrize(
    "message",
    [
        bytes([RECORDS, 2, R_PK_INDEX, 0]),  # Record without its required data
        bytes([RECORDS, 3, R_DATA, 1]) + b"x",  # Record without its required partition_key_index
        bytes([RECORDS, 9, R_PK_INDEX, 0]),  # length overruns the message
        bytes([0x0F, 0, 0]),  # wire type 7
    ],
)
def test_protobuf_failure_is_not_aggregated(message: bytes) -> None:
    assert deaggregate(aggregate(message + bytes(16))) is None


def test_unknown_fields_are_skipped() -> None:
    message = (
        bytes([PK_TABLE, 1]) + b"p"
        + bytes([0x20, 0x05])  # AggregatedRecord field 4, varint: unknown
        + bytes([0x0D]) + bytes(4)  # field 1 with wire type 5: unknown, skipped
        + bytes([RECORDS, 7, R_PK_INDEX, 0, 0x30, 0x01, R_DATA, 1]) + b"x"  # Record field 6: unknown
    )  # fmt: skip
    assert user_record_data(aggregate(message)) == [b"x"]


@pytest.mark.parametrize(
    "record",
    [
        bytes([R_PK_INDEX, 1, R_DATA, 1]) + b"x",  # one partition key, index 1
        bytes([R_PK_INDEX, 0, R_EHK_INDEX, 0, R_DATA, 1]) + b"x",  # no explicit hash key table
    ],
)
def test_key_index_out_of_range_is_an_envelope_error(record: bytes) -> None:
    data = aggregate(bytes([PK_TABLE, 1]) + b"p" + bytes([RECORDS, len(record)]) + record)
    with pytest.raises(EnvelopeError) as info:
        user_record_data(data)
    assert info.value.reason == "kpl_bad_key_index"
    with pytest.raises(EnvelopeError):
        deaggregate(data)


def test_magic_constant() -> None:
    # The KCL writes it as signed Java bytes: {-13, -119, -102, -62}
    assert bytes(b & 0xFF for b in (-13, -119, -102, -62)) == kpl.MAGIC


# Produced by the reference implementation (aws_kinesis_agg 1.2.3, RecordAggregator) from
# add_user_record("pk-%d" % (i % 3), b"d%d" % i, None if i % 2 else str(2**127 + i)), i < 4
REFERENCE_AGGREGATE = bytes.fromhex(
    "f3899ac20a04706b2d300a04706b2d310a04706b2d32122731373031343131383334363034363932"
    "333137333136383733303337313538383431303537323812273137303134313138333436303436393233"
    "313733313638373330333731353838343130353733301a08080010001a0264301a0608011a0264311a08"
    "080210011a0264321a0608001a0264337847639b81ac76cfc19fa30664a7393b"
)
REFERENCE_RECORDS = [
    (f"pk-{i % 3}", b"d%d" % i, None if i % 2 else str(2**127 + i)) for i in range(4)
]


def test_reads_the_reference_aggregator() -> None:
    assert deaggregate(REFERENCE_AGGREGATE) == [
        UserRecord(pk, ehk, data) for pk, data, ehk in REFERENCE_RECORDS
    ]


def test_writes_the_same_bytes_as_the_reference_aggregator() -> None:
    assert (
        encode_kpl(
            [(pk, data) for pk, data, _ in REFERENCE_RECORDS],
            explicit_hash_keys=[ehk for _, _, ehk in REFERENCE_RECORDS],
        )
        == REFERENCE_AGGREGATE
    )
