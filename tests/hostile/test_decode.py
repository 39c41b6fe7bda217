"""The daemon's decoder (``dredge.decode``) on hostile records: random bytes, damaged gzip,
CloudWatch Logs JSON of any shape, KPL aggregates with any content (nested, damaged).
``decode_records`` never raises; every record is accounted for (a kind, dead letters capped
at 256 bytes of sample); the lines of the records that are good all come out."""

from __future__ import annotations

import gzip

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dredge.decode import REASONS, DecodeConfig, decode_records, encode_cloudwatch, encode_kpl
from dredge.decode.batch import SAMPLE_BYTES
from dredge.decode.kpl import MAGIC
from tests.hostile.conftest import RECORD

GOOD = encode_cloudwatch([RECORD.encode()] * 3, log_stream="eni-0a1b2c3d-all", owner="1")
SMALL = DecodeConfig(max_inflated_bytes=64 * 1024)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["messageType", "logEvents", "logStream", "message",
                                       "owner", "id", "timestamp", "x"]), children, max_size=6),
    max_leaves=20)


def _gzip_json(value: object) -> bytes:
    return gzip.compress(orjson.dumps(value), mtime=0)


def _damage(data: bytes, at: int, how: int) -> bytes:
    if not data:
        return data
    at %= len(data)
    return data[:at] if how == 0 else data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]


records = st.one_of(
    st.binary(max_size=300),
    json_values.map(_gzip_json),
    st.builds(lambda t: _gzip_json({"messageType": "DATA_MESSAGE", "logStream": "eni-1-all",
                                    "logEvents": [{"message": m} for m in t]}),
              st.lists(st.text(max_size=80), max_size=4)),
    st.builds(_damage, st.just(GOOD), st.integers(0, 10_000), st.integers(0, 1)),
    st.builds(lambda parts: encode_kpl([("k", p) for p in parts]),
              st.lists(st.one_of(st.binary(max_size=100), st.just(GOOD),
                                 json_values.map(_gzip_json)), min_size=1, max_size=4)),
    st.builds(lambda parts, at, how: _damage(encode_kpl([("k", p) for p in parts]), at, how),
              st.lists(st.binary(max_size=60), min_size=1, max_size=3),
              st.integers(0, 10_000), st.integers(0, 1)),
    st.binary(max_size=200).map(lambda b: MAGIC + b),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(records, max_size=6), where=st.integers(0, 6))
def test_decode_never_raises_and_accounts_for_every_record(batch: list[bytes], where: int) -> None:
    batch = [*batch[:where], GOOD, *batch[where:]]
    out = decode_records(batch, SMALL)
    s = out.stats
    assert s.cwl + s.kpl + s.kpl_fallback + s.plain == len(batch)
    for letter in out.dead_letters:
        assert letter.reason in REASONS
        assert len(letter.sample) <= SAMPLE_BYTES and len(letter.detail) <= 4096
        assert 0 <= letter.record_index < len(batch)
    good_index = where if where < len(batch) else len(batch) - 1
    good_lines = [line for line, rec in zip(out.line_list(), out.line_record.tolist(), strict=True)
                  if rec == good_index]
    assert good_lines == [RECORD.encode()] * 3
    assert len(out.line_record) == len(out.line_subseq) == len(out.line_eni)


def test_decode_bomb_is_dead_lettered_in_bounded_memory() -> None:
    bomb = gzip.compress(b'{"messageType": "DATA_MESSAGE", "logEvents": [{"message": "'
                         + b" " * (200 << 20) + b'"}]}', compresslevel=1)
    out = decode_records([bomb, GOOD], SMALL)
    assert [d.reason for d in out.dead_letters] == ["inflated_too_large"]
    assert len(out) == 3
