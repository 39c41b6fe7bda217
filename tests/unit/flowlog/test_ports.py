"""The service port: the rule against a plain-Python reference for any ports and protocol, and
the same answer from text lines (``from_parsed``) and from Parquet columns (``from_arrow``)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.flowlog.parser import FlowParser
from dredge.flowlog.ports import (
    EPHEMERAL_FROM,
    check_ephemeral_from,
    fold_ephemeral,
    lower_port,
    service_port,
)

NOW = 1_795_600_000


def reference(src: int | None, dst: int | None, proto: int | None, ephemeral_from: int) -> int | None:
    """The rule as the README states it, one flow at a time."""
    if proto not in (6, 17, 132) or src is None or dst is None:
        return None
    low = min(src, dst)
    if low == 0:
        return None
    return 0 if low >= ephemeral_from else low


_port = st.one_of(st.none(), st.integers(0, 65_535), st.sampled_from([0, 22, 443, 1023, 32_767,
                                                                     32_768, 49_152, 65_535]))
_proto = st.one_of(st.none(), st.integers(0, 255), st.sampled_from([1, 6, 17, 58, 132]))
_flow = st.tuples(_port, _port, _proto)


@settings(max_examples=200, deadline=None)
@given(st.lists(_flow, max_size=60), st.one_of(st.just(EPHEMERAL_FROM), st.integers(1, 65_535)))
def test_rule_equals_reference(flows: list[tuple[int | None, int | None, int | None]],
                               ephemeral_from: int) -> None:
    n = len(flows)
    src = np.array([s or 0 for s, _, _ in flows], np.int64)
    dst = np.array([d or 0 for _, d, _ in flows], np.int64)
    src_null = np.array([s is None for s, _, _ in flows], np.bool_)
    dst_null = np.array([d is None for _, d, _ in flows], np.bool_)
    proto = np.array([-1 if p is None else p for _, _, p in flows], np.int16)
    got = service_port(src, src_null, dst, dst_null, proto, ephemeral_from)
    assert got.dtype == np.int32 and got.shape == (n,)
    want = [reference(s, d, p, ephemeral_from) for s, d, p in flows]
    assert [None if v < 0 else int(v) for v in got] == want
    # bounded: at most ephemeral_from distinct values besides "none"
    assert int(got.max(initial=0)) < ephemeral_from
    # the two halves compose to the whole rule
    assert np.array_equal(fold_ephemeral(lower_port(src, src_null, dst, dst_null, proto),
                                         ephemeral_from), got)


def test_ephemeral_from_bounds() -> None:
    assert check_ephemeral_from(32_768) is None and check_ephemeral_from(65_535) is None
    for bad in (0, 65_536, -1, True, 1.5, "32768"):
        assert "1-65535" in (check_ephemeral_from(bad) or "")


LINES = [
    b"2 1 eni-a 10.0.0.1 10.0.0.2 49152 443 6 10 840 1795572000 1795572060 ACCEPT OK",  # 443
    b"2 1 eni-a 10.0.0.2 10.0.0.1 443 49152 6 10 840 1795572000 1795572060 ACCEPT OK",  # 443
    b"2 1 eni-a 10.0.0.1 10.0.0.2 0 0 1 1 84 1795572000 1795572060 ACCEPT OK",  # icmp: none
    b"2 1 eni-a 10.0.0.1 10.0.0.2 50000 40000 17 1 84 1795572000 1795572060 REJECT OK",  # 0
    b"2 1 eni-a 10.0.0.1 10.0.0.2 - - 6 1 84 1795572000 1795572060 REJECT OK",  # none
    b"2 1 eni-a 10.0.0.1 10.0.0.2 33000 22 132 1 84 1795572000 1795572060 REJECT OK",  # 22
    b"2 1 eni-a 10.0.0.1 10.0.0.2 0 443 6 1 84 1795572000 1795572060 REJECT OK",  # port 0: none
]
WANT_LOWER = [443, 443, -1, 40_000, -1, 22, -1]


def test_text_and_parquet_paths_agree() -> None:
    chunk = FlowParser(DEFAULT_FORMAT).parse(b"\n".join(LINES) + b"\n")
    text, _ = FlowColumns.from_parsed(chunk, now=NOW)
    assert text.port.dtype == np.int32 and text.port.tolist() == WANT_LOWER
    table = FlowParser(DEFAULT_FORMAT, keep_text=True).parse(b"\n".join(LINES) + b"\n").to_arrow()
    parquet, _, bad, _ = FlowColumns.from_arrow(table, now=NOW)
    assert bad.size == 0 and parquet.port.tolist() == WANT_LOWER
    assert fold_ephemeral(text.port).tolist() == [443, 443, -1, 0, -1, 22, -1]


def test_no_port_fields_means_no_port() -> None:
    fmt = FlowFormat.parse("version srcaddr dstaddr protocol start bytes packets")
    chunk = FlowParser(fmt).parse(b"2 10.0.0.1 10.0.0.2 6 1795572000 10 1\n")
    cols, _ = FlowColumns.from_parsed(chunk, now=NOW)
    assert cols.port.tolist() == [-1]
    table = pa.table({"srcaddr": ["10.0.0.1"], "dstaddr": ["10.0.0.2"], "protocol": [6],
                      "start": [1795572000], "bytes": [10], "packets": [1], "dstport": [443]})
    parquet, _, _, _ = FlowColumns.from_arrow(table, now=NOW)
    assert parquet.port.tolist() == [-1]  # one side known is not enough
