"""Plausibility bounds: records that parse but cannot be true are refused with the field."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog import bounds, kernels
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.fields import DEFAULT_FORMAT
from dredge.flowlog.parser import FlowParser

NOW = 1_764_547_200  # 2025-12-01T00:00:00Z
GOOD = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 {sp} {dp} {proto} {pk} {by} {st} {en} ACCEPT OK"


def line(**kw: object) -> bytes:
    v = {"sp": 443, "dp": 50000, "proto": 6, "pk": 10, "by": 8400, "st": NOW - 120,
         "en": NOW - 60, **kw}
    return GOOD.format(**v).encode()


def verdict(text: bytes) -> tuple[str, str | None]:
    chunk = FlowParser(DEFAULT_FORMAT, keep_strings=False).parse(text)
    cols, counts = FlowColumns.from_parsed(chunk, now=NOW)
    assert chunk.n == 1
    st_, bf = int(chunk.status[0]), int(chunk.bad_field[0])
    assert (cols.n, counts.malformed) == ((1, 0) if st_ == kernels.OK else (0, 1))
    return kernels.STATUS_REASONS.get(st_, "ok"), (DEFAULT_FORMAT.fields[bf] if bf >= 0 else None)


def test_a_plausible_record_passes() -> None:
    assert verdict(line()) == ("ok", None)


@pytest.mark.parametrize(("kw", "field"), [
    ({"sp": 65536}, "srcport"),
    ({"dp": 99999}, "dstport"),
    ({"proto": 256}, "protocol"),
    ({"st": NOW + 2 * 86_400, "en": NOW + 2 * 86_400 + 60}, "start"),  # centuries: same rule
    ({"st": 99_999_999_999, "en": 99_999_999_999}, "start"),
    ({"en": NOW - 180}, "end"),  # before start
    ({"st": NOW - 3 * 86_400}, "end"),  # a window of three days
    ({"pk": 1, "by": 65_536}, "bytes"),  # more than the largest IP packet
    ({"pk": 0, "by": 1}, "bytes"),
    ({"pk": 10**12, "by": 10**17}, "bytes"),  # 10^17 B in 60 s: past 400 Gbit/s
    ({"pk": 10**17, "by": 10**18 - 1}, "bytes"),  # no int64 overflow on the way
])
def test_out_of_bounds_is_refused_with_its_field(kw: dict[str, int], field: str) -> None:
    assert verdict(line(**kw)) == ("out_of_range", field)


def test_edges_are_inside() -> None:
    assert verdict(line(sp=65535, dp=0, proto=255)) == ("ok", None)
    assert verdict(line(pk=1, by=65_535)) == ("ok", None)
    assert verdict(line(st=NOW + 86_400, en=NOW + 86_400)) == ("ok", None)
    assert verdict(line(pk=10**9, by=61 * bounds.MAX_BYTES_PER_S)) == ("ok", None)


def test_a_syntax_error_keeps_its_own_reason() -> None:
    assert verdict(line(sp="http", dp=99999)) == ("bad_integer", "srcport")


def test_ipv4_mapped_addresses_are_ipv4() -> None:
    text = line().replace(b"10.0.0.1 10.0.0.2", b"::ffff:10.0.0.1 ::FFFF:a00:2")
    chunk = FlowParser(DEFAULT_FORMAT, keep_strings=False).parse(text)
    cols, _ = FlowColumns.from_parsed(chunk, now=NOW)
    assert cols.src.fam.tolist() == [4] and cols.dst.fam.tolist() == [4]
    assert int(cols.src.lo[0]) == int(ipaddress.IPv4Address("10.0.0.1"))
    assert int(cols.dst.lo[0]) == int(ipaddress.IPv4Address("10.0.0.2"))
    other = line().replace(b"10.0.0.1", b"::fffe:10.0.0.1")  # not mapped: stays IPv6
    cols, _ = FlowColumns.from_parsed(FlowParser(DEFAULT_FORMAT).parse(other), now=NOW)
    assert cols.src.fam.tolist() == [6]


def test_parquet_rows_out_of_bounds_are_reported_with_the_reason() -> None:
    table = pa.table({
        "srcaddr": ["10.0.0.1", "10.0.0.1", "nonsense"],
        "dstaddr": ["10.0.0.2", "10.0.0.2", "10.0.0.2"],
        "dstport": pa.array([443, 70_000, 443], pa.int32()),
        "start": [NOW - 60, NOW - 60, NOW - 60],
        "end": [NOW, NOW, NOW],
        "bytes": [840, 840, 840],
        "packets": [10, 10, 10],
    })
    cols, counts, rows, reasons = FlowColumns.from_arrow(table, now=NOW)
    assert cols.n == 1 and counts.malformed == 2
    assert rows.tolist() == [1, 2]
    assert reasons.tolist() == ["out_of_range", "bad_address"]


_in = st.fixed_dictionaries({
    "sp": st.integers(0, 65_535), "dp": st.integers(0, 65_535), "proto": st.integers(0, 255),
    "pk": st.integers(1, 10**6), "per": st.integers(1, 65_535),
    "st": st.integers(0, NOW + 86_400), "dur": st.integers(0, 600),
})


@settings(max_examples=200, deadline=None)
@given(_in)
def test_property_records_inside_every_bound_pass(v: dict[str, int]) -> None:
    by = min(v["pk"] * v["per"], (v["dur"] + 1) * bounds.MAX_BYTES_PER_S)
    text = line(sp=v["sp"], dp=v["dp"], proto=v["proto"], pk=v["pk"], by=by, st=v["st"],
                en=v["st"] + v["dur"])
    assert verdict(text) == ("ok", None)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["sp", "dp", "proto", "st"]), st.integers(1, 10**15))
def test_property_any_field_past_its_bound_is_refused(key: str, excess: int) -> None:
    limit = {"sp": 65_535, "dp": 65_535, "proto": 255, "st": NOW + 86_400}[key]
    kw: dict[str, object] = {key: limit + excess}
    if key == "st":
        kw["en"] = limit + excess
    reason, _ = verdict(line(**kw))
    assert reason == "out_of_range"


def test_mark_leaves_an_empty_chunk_alone() -> None:
    chunk = FlowParser(DEFAULT_FORMAT).parse(b"")
    bounds.mark(chunk, NOW)
    assert chunk.n == 0 and np.asarray(chunk.status).size == 0
