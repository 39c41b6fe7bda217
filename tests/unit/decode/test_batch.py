"""decode_records: one buffer of lines per batch, provenance per line, dead letters, metrics."""

from __future__ import annotations

import functools
import hashlib
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zlib_ng import zlib_ng

from dredge.decode import (
    REASONS,
    DecodeConfig,
    DecodedBatch,
    decode_records,
    encode_cloudwatch,
    encode_kpl,
)
from dredge.errors import ConfigError
from dredge.telemetry.metrics import REGISTRY

OWNER = "123456789012"
ENI = "eni-0a1b2c3d4e5f60718"


def flow_line(i: int) -> bytes:
    return (
        f"2 {OWNER} {ENI} 10.0.1.{i % 250} 10.0.2.9 443 {40000 + i} 6 10 8400 "
        f"1764000000 1764000060 ACCEPT OK"
    ).encode()


def cwl(lines: list[bytes], eni: str = ENI) -> bytes:
    return encode_cloudwatch(lines, log_stream=f"{eni}-all", owner=OWNER)


def control() -> bytes:
    return encode_cloudwatch(
        [b"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."],
        log_stream="",
        owner="CloudwatchLogs",
        message_type="CONTROL_MESSAGE",
    )


def check_shapes(batch: DecodedBatch) -> None:
    n = len(batch.line_list())
    assert len(batch) == n
    for column in (batch.line_record, batch.line_subseq, batch.line_eni):
        assert column.dtype == np.int32
        assert column.shape == (n,)
    assert not batch.lines.endswith(b"\n")


def test_defaults_validate() -> None:
    DecodeConfig().validate()


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_config_rejects(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        DecodeConfig(max_inflated_bytes=bad).validate()  # type: ignore[arg-type]
    assert info.value.field == "max_inflated_bytes"


def test_empty_batch_and_empty_records() -> None:
    for records in ([], [b""], [b"", b"\n", b"\r\n \n"]):
        batch = decode_records(records)
        check_shapes(batch)
        assert batch.lines == b""
        assert len(batch) == 0
        assert batch.dead_letters == []
        assert batch.stats.plain == len(records)


def test_plain_records() -> None:
    batch = decode_records([b"a 1\r\nb 2\r\n", b"c 3", b"\n\nd 4\n\n"])
    check_shapes(batch)
    assert batch.line_list() == [b"a 1", b"b 2", b"c 3", b"d 4"]
    assert batch.line_record.tolist() == [0, 0, 1, 2]
    assert batch.line_subseq.tolist() == [0, 0, 0, 0]
    assert batch.eni_list() == [None] * 4
    assert batch.stats.plain == 3


def test_cloudwatch_records() -> None:
    lines = [flow_line(i) for i in range(3000)]
    other = "eni-0ffffffffffffffff"
    batch = decode_records([cwl(lines[:2000]), cwl(lines[2000:], eni=other)])
    check_shapes(batch)
    assert batch.line_list() == lines
    assert batch.line_record.tolist() == [0] * 2000 + [1] * 1000
    assert batch.eni_list() == [ENI] * 2000 + [other] * 1000
    assert batch.eni_table == [ENI, other]
    assert batch.stats.cwl == 2
    assert batch.stats.inflated_bytes > sum(map(len, lines))


def test_cloudwatch_log_stream_without_eni() -> None:
    data = encode_cloudwatch([b"x 1"], log_stream="some-other-stream", owner=OWNER)
    batch = decode_records([data])
    assert batch.line_eni.tolist() == [-1]
    assert batch.eni_list() == [None]


def test_control_messages_are_counted_and_skipped() -> None:
    batch = decode_records([control(), cwl([b"x 1"]), control()])
    assert batch.control_messages == 2
    assert batch.line_list() == [b"x 1"]
    assert batch.line_record.tolist() == [1]
    assert batch.dead_letters == []


def test_kpl_of_plain_lines() -> None:
    data = encode_kpl([("a", b"l0\nl1\n"), ("b", b""), ("a", b"l2\r\n")])
    batch = decode_records([b"p0", data])
    check_shapes(batch)
    assert batch.line_list() == [b"p0", b"l0", b"l1", b"l2"]
    assert batch.line_record.tolist() == [0, 1, 1, 1]
    assert batch.line_subseq.tolist() == [0, 0, 0, 2]  # user record 1 is empty
    assert (batch.stats.kpl, batch.stats.kpl_subrecords, batch.stats.plain) == (1, 3, 1)


def test_kpl_of_cloudwatch_payloads() -> None:
    other = "eni-0ffffffffffffffff"
    data = encode_kpl(
        [
            ("a", cwl([b"c0", b"c1"])),
            ("b", control()),
            ("c", b"plain"),
            ("d", cwl([b"c2"], eni=other)),
        ]
    )
    batch = decode_records([data])
    check_shapes(batch)
    assert batch.line_list() == [b"c0", b"c1", b"plain", b"c2"]
    assert batch.line_subseq.tolist() == [0, 0, 2, 3]
    assert batch.eni_list() == [ENI, ENI, None, other]
    assert batch.control_messages == 1
    assert (batch.stats.kpl, batch.stats.nested_cwl, batch.stats.cwl) == (1, 3, 0)


def test_kpl_with_bad_md5_passes_through_as_plain() -> None:
    data = bytearray(encode_kpl([("a", b"l0")]))
    data[-1] ^= 0xFF
    batch = decode_records([bytes(data)])
    assert batch.stats.kpl_fallback == 1
    assert batch.stats.kpl == 0
    assert batch.dead_letters == []
    assert b"\n".join(batch.line_list()) == bytes(data).strip(b" \t\r\n")
    assert set(batch.line_subseq.tolist()) == {0}


def test_kpl_with_unparseable_protobuf_passes_through_as_plain() -> None:
    message = b"\x0f\x00\x00"  # wire type 7
    data = b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()
    batch = decode_records([data])
    assert batch.stats.kpl_fallback == 1
    assert batch.dead_letters == []


def test_nested_aggregate_is_not_unpacked() -> None:
    inner = encode_kpl([("a", b"deep")])
    batch = decode_records([encode_kpl([("a", inner)])])
    assert batch.stats.kpl_subrecords == 1
    assert b"deep" not in batch.line_list()  # read as plain bytes, not unpacked again


def test_kpl_bad_key_index_is_dead_lettered() -> None:
    message = b"\x0a\x01p" + b"\x1a\x05\x08\x03\x1a\x01x"  # partition_key_index 3 of 1
    data = b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()
    batch = decode_records([b"ok", data])
    assert batch.line_list() == [b"ok"]
    assert [(d.record_index, d.reason) for d in batch.dead_letters] == [(1, "kpl_bad_key_index")]


def test_corrupt_records_are_dead_lettered_not_raised() -> None:
    good = cwl([b"g 1"])
    corrupt = bytearray(good)
    corrupt[12:20] = b"\xff" * 8
    truncated = good[: len(good) // 2]
    not_json = gzip_bytes(b"this is not json")
    records = [bytes(corrupt), truncated, not_json, good, b"\x1f\x8b"]
    batch = decode_records(records)
    assert batch.line_list() == [b"g 1"]
    assert batch.line_record.tolist() == [3]
    letters = [(d.record_index, d.subseq, d.reason) for d in batch.dead_letters]
    assert letters == [
        (0, 0, "corrupt_gzip"),
        (1, 0, "truncated_gzip"),
        (2, 0, "bad_cwl_json"),
        (4, 0, "truncated_gzip"),
    ]
    assert batch.dead_letters[1].sample == truncated[:256]
    assert all(len(d.sample) <= 256 for d in batch.dead_letters)
    assert batch.stats.cwl == 5


def test_dead_letter_inside_kpl_keeps_its_siblings() -> None:
    data = encode_kpl([("a", b"before"), ("b", b"\x1f\x8bbroken"), ("c", b"after")])
    batch = decode_records([data])
    assert batch.line_list() == [b"before", b"after"]
    assert batch.line_subseq.tolist() == [0, 2]
    assert [(d.record_index, d.subseq, d.reason) for d in batch.dead_letters] == [
        (0, 1, "corrupt_gzip")
    ]


def gzip_bytes(payload: bytes, level: int = 6) -> bytes:
    deflater = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 31)
    return deflater.compress(payload) + deflater.flush()


@functools.cache
def zeros_bomb(megabytes: int) -> bytes:
    deflater = zlib_ng.compressobj(9, zlib_ng.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join(deflater.compress(block) for _ in range(megabytes)) + deflater.flush()


@pytest.mark.parametrize("limit", [1 << 20, 8 << 20])
def test_gzip_bomb_is_dead_lettered_within_bounded_memory(limit: int) -> None:
    bomb = zeros_bomb(100)  # 100 MiB of zeros in about 100 KiB
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        batch = decode_records([bomb, b"ok"], DecodeConfig(max_inflated_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(d.record_index, d.reason) for d in batch.dead_letters] == [(0, "inflated_too_large")]
    assert batch.line_list() == [b"ok"]
    assert peak < 2 * limit


def test_payload_just_under_the_limit_is_accepted() -> None:
    lines = [flow_line(i) for i in range(2000)]
    data = cwl(lines)
    inflated = len(zlib_ng.decompress(data, 31))
    assert decode_records([data], DecodeConfig(max_inflated_bytes=inflated)).line_list() == lines
    rejected = decode_records([data], DecodeConfig(max_inflated_bytes=inflated - 1))
    assert [d.reason for d in rejected.dead_letters] == ["inflated_too_large"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_what_moved() -> None:
    names = {
        "cwl": ("dredge_decode_records_total", {"kind": "cwl"}),
        "kpl": ("dredge_decode_records_total", {"kind": "kpl"}),
        "fallback": ("dredge_decode_records_total", {"kind": "kpl_fallback"}),
        "plain": ("dredge_decode_records_total", {"kind": "plain"}),
        "sub": ("dredge_decode_subrecords_total", {}),
        "lines": ("dredge_decode_lines_total", {}),
        "control": ("dredge_decode_control_messages_total", {}),
        "dead": ("dredge_decode_dead_letters_total", {"reason": "corrupt_gzip"}),
    }
    before = {k: sample(n, **labels) for k, (n, labels) in names.items()}
    bad_md5 = bytearray(encode_kpl([("a", b"x")]))
    bad_md5[-1] ^= 1
    decode_records(
        [
            cwl([b"a", b"b"]),
            control(),
            encode_kpl([("a", b"c"), ("b", b"d")]),
            bytes(bad_md5),
            b"e",
            b"\x1f\x8bxx",
        ]
    )
    after = {k: sample(n, **labels) for k, (n, labels) in names.items()}
    delta = {k: after[k] - before[k] for k in names}
    assert delta == {
        "cwl": 3, "kpl": 1, "fallback": 1, "plain": 1, "sub": 2,
        "lines": 2 + 2 + len(bytes(bad_md5).split(b"\n")) + 1, "control": 1, "dead": 1,
    }  # fmt: skip
    for reason in REASONS:  # every reason is exported from the start, at zero if need be
        assert (
            REGISTRY.get_sample_value("dredge_decode_dead_letters_total", {"reason": reason})
            is not None
        )


# --- properties ------------------------------------------------------------------------

line_text = (
    st.text(
        st.characters(codec="utf-8", exclude_characters="\n\r"),
        min_size=1,
        max_size=60,
    )
    .map(lambda s: s.encode().strip(b" \t\r\n"))
    .filter(bool)
)
line_lists = st.lists(line_text, max_size=8)


@dataclass
class Expected:
    lines: list[bytes]
    records: list[int]
    subseqs: list[int]


@st.composite
def envelope(draw: st.DrawFn) -> tuple[str, object]:
    """One record spec: ("plain", lines) | ("cwl", lines) | ("kpl", [(kind, lines), ...])."""
    kind = draw(st.sampled_from(["plain", "cwl", "kpl"]))
    if kind == "kpl":
        subs = draw(
            st.lists(
                st.tuples(st.sampled_from(["plain", "cwl"]), line_lists), min_size=1, max_size=6
            )
        )
        return kind, subs
    return kind, draw(line_lists)


def build(kind: str, lines: list[bytes], trailing: bool) -> bytes:
    if kind == "cwl":
        return cwl(lines)
    return b"\n".join(lines) + (b"\r\n" if trailing and lines else b"")


@settings(max_examples=100, deadline=None)
@given(st.lists(envelope(), max_size=8), st.booleans())
def test_any_mix_of_envelopes_round_trips(specs: list[tuple[str, object]], trailing: bool) -> None:
    records: list[bytes] = []
    want = Expected([], [], [])
    for index, (kind, spec) in enumerate(specs):
        if kind == "kpl":
            subs: list[tuple[str, list[bytes]]] = spec  # type: ignore[assignment]
            records.append(
                encode_kpl(
                    [(f"pk-{i % 3}", build(k, ls, trailing)) for i, (k, ls) in enumerate(subs)]
                )
            )
            for subseq, (_, ls) in enumerate(subs):
                want.lines += ls
                want.records += [index] * len(ls)
                want.subseqs += [subseq] * len(ls)
        else:
            lines: list[bytes] = spec  # type: ignore[assignment]
            records.append(build(kind, lines, trailing))
            want.lines += lines
            want.records += [index] * len(lines)
            want.subseqs += [0] * len(lines)
    batch = decode_records(records)
    check_shapes(batch)
    assert batch.dead_letters == []
    assert batch.line_list() == want.lines
    assert batch.line_record.tolist() == want.records
    assert batch.line_subseq.tolist() == want.subseqs


@settings(max_examples=100, deadline=None)
@given(st.lists(line_lists, min_size=1, max_size=20))
def test_kpl_subsequence_numbers(groups: list[list[bytes]]) -> None:
    data = encode_kpl([(str(i), b"\n".join(g)) for i, g in enumerate(groups)])
    batch = decode_records([data])
    assert batch.line_list() == [line for g in groups for line in g]
    assert batch.line_subseq.tolist() == [i for i, g in enumerate(groups) for _ in g]
    assert batch.stats.kpl_subrecords == len(groups)


@settings(max_examples=100, deadline=None)
@given(line_lists, st.from_regex(r"eni-[0-9a-f]{8,17}", fullmatch=True))
def test_cloudwatch_round_trip(lines: list[bytes], eni: str) -> None:
    batch = decode_records([cwl(lines, eni=eni)])
    assert batch.line_list() == lines
    assert batch.eni_list() == [eni] * len(lines)


def test_kpl_runs_of_plain_user_records_around_cloudwatch_ones() -> None:
    big = b"\n".join(flow_line(i) for i in range(300)) + b"\r\n"  # > 16 KiB with the others
    records = [
        ("a", b"l0\r\n"),
        ("b", b"  \n\n"),  # blank only: no line, no row
        ("c", big),
        ("d", cwl([b"c0"])),
        ("e", b"l1\nl2"),
        ("f", b""),
        ("g", b"l3 \t"),
        ("h", cwl([b"c1"])),
    ]
    batch = decode_records([encode_kpl(records)])
    check_shapes(batch)
    big_lines = big.strip().split(b"\n")
    assert batch.line_list() == [b"l0", *big_lines, b"c0", b"l1", b"l2", b"l3", b"c1"]
    assert batch.line_subseq.tolist() == [0] + [2] * 300 + [3, 4, 4, 6, 7]
    assert batch.eni_list() == [None] * 301 + [ENI, None, None, None, ENI]
