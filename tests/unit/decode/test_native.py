"""The C kernels of dredge.decode._native refuse arguments that would take them outside a
buffer (a ValueError, never a read or write out of bounds), and the KPL gather joins spans
exactly as the Python expression it replaces. The kernels run without the GIL: threads
sharing inputs get what one thread gets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.decode import _native, encode_cloudwatch, encode_kpl
from dredge.decode.cloudwatch import inflate_gzip
from dredge.decode.cwlscan import scan
from dredge.decode.kplscan import gather, spans


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40), cuts=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=6))
def test_gather_joins_spans(data: bytes, cuts: list[tuple[int, int]]) -> None:
    spans = [(min(a, b, len(data)), min(max(a, b), len(data))) for a, b in cuts]
    starts, ends = i64(*(a for a, _ in spans)), i64(*(b for _, b in spans))
    assert gather(data, starts, ends) == b"\n".join(data[a:b] for a, b in spans)


@pytest.mark.parametrize(("starts", "ends", "size"), [
    ((0, 2), (1, 9), 9),  # a span past the data
    ((-1,), (1,), 2),  # before it
    ((3,), (1,), 0),  # reversed
    ((0, 0), (2, 2), 4),  # the output holds 4 bytes, the join 5
])
def test_gather_refuses_spans_outside(starts: tuple[int, ...], ends: tuple[int, ...], size: int) -> None:
    with pytest.raises(ValueError, match="span"):
        _native.kpl_gather(b"abcd", i64(*starts), i64(*ends), np.empty(size, np.uint8))


def test_kpl_spans_refuses_an_end_past_the_data_and_short_outputs() -> None:
    out = [np.empty(4, t) for t in (np.uint64, np.uint64, np.bool_, np.int64, np.int64)]
    with pytest.raises(ValueError, match="past the data"):
        _native.kpl_spans(b"\xf3\x89\x9a\xc2\x1a", 6, *out)
    out[3] = np.empty(3, np.int64)
    with pytest.raises(ValueError, match="starts"):
        _native.kpl_spans(b"\xf3\x89\x9a\xc2\x1a", 5, *out)
    with pytest.raises(ValueError, match="aligned"):
        _native.kpl_spans(b"\xf3\x89\x9a\xc2", 4, *out[:3], np.empty(33, np.uint8)[1:], out[4])


def test_cwl_scan_needs_room_for_the_whole_document() -> None:
    with pytest.raises(ValueError, match="out"):
        _native.cwl_scan(b'{"messageType":"DATA_MESSAGE"}', np.empty(10, np.uint8))


def test_threads_get_what_one_thread_gets() -> None:
    docs = [bytes(inflate_gzip(encode_cloudwatch([b"line %d" % j for j in range(i * 50)], log_stream="eni-1-all",
                                                 owner="1"), 1 << 24)) for i in range(1, 9)]
    aggs = [encode_kpl([("k", b"user %d" % j) for j in range(i * 40)]) for i in range(1, 9)]

    def work(i: int) -> tuple[object, bytes]:
        data = aggs[i % 8]
        got = spans(data, len(data) - 16)
        assert isinstance(got, tuple)
        return scan(docs[i % 8]), gather(data, got[5], got[6])

    alone = [work(i) for i in range(64)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(work, range(64))) == alone
