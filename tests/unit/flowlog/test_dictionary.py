"""Dictionary-encoded Arrow columns (how Parquet delivers repeated addresses and words) give
exactly what the same columns as plain strings give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog.columns import FlowColumns, word_codes
from dredge.flowlog.fields import CODES
from dredge.flowlog.parser import parse_addresses

ADDRESSES = ["10.0.0.1", "10.0.0.2", "-", "fd00::1", "::ffff:10.0.0.1", "300.1.1.1", "2001:db8::",
             "", "not an address", "192.168.1.255"]


def _same(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray) -> None:
    x, y = parse_addresses(a), parse_addresses(b)
    np.testing.assert_array_equal(x.fam, y.fam)
    good = x.fam >= 0  # a bad address's hi/lo are not part of the answer
    np.testing.assert_array_equal(x.hi[good], y.hi[good])
    np.testing.assert_array_equal(x.lo[good], y.lo[good])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(ADDRESSES)), max_size=40), st.integers(1, 4))
def test_addresses_dictionary_equals_plain(values: list[str | None], pieces: int) -> None:
    plain = pa.array(values, pa.string())
    _same(plain, plain.dictionary_encode())
    cut = [plain.slice(i * len(values) // pieces, (i + 1) * len(values) // pieces - i * len(values) // pieces)
           for i in range(pieces)]
    chunked = pa.chunked_array([c.dictionary_encode() for c in cut],
                               pa.dictionary(pa.int32(), pa.string()))
    _same(plain, chunked)


def test_all_null_dictionary() -> None:
    arr = pa.array([None, None], pa.string()).dictionary_encode()
    got = parse_addresses(arr)
    assert got.fam.tolist() == [0, 0] and got.lo.tolist() == [0, 0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["ACCEPT", "REJECT", "accept", "-", "x"])),
                max_size=30))
def test_words_dictionary_equals_plain(values: list[str | None]) -> None:
    plain = pa.array(values, pa.string())
    want = word_codes(plain, CODES["action"])
    np.testing.assert_array_equal(word_codes(plain.dictionary_encode(), CODES["action"]), want)
    np.testing.assert_array_equal(
        word_codes(pa.chunked_array([plain.dictionary_encode()]), CODES["action"]), want)
    expected = [CODES["action"].index(v.encode()) + 1 if v in ("ACCEPT", "REJECT") else 0 for v in values]
    assert want.tolist() == expected


def test_from_arrow_dictionary_equals_plain() -> None:
    n = 50
    rng = np.random.default_rng(5)
    table = pa.table({
        "start": pa.array(1795564800 + rng.integers(0, 3600, n)),
        "bytes": pa.array(rng.integers(0, 10_000, n)),
        "packets": pa.array(rng.integers(1, 10, n)),
        "protocol": pa.array(rng.choice([6, 17], n).astype(np.int32)),
        "action": pa.array(rng.choice(["ACCEPT", "REJECT", None], n)),
        "log_status": pa.array(rng.choice(["OK", "NODATA", "SKIPDATA"], n, p=[0.8, 0.1, 0.1])),
        "flow_direction": pa.array(rng.choice(["ingress", "egress", None], n)),
        "srcaddr": pa.array(rng.choice(ADDRESSES, n)),
        "dstaddr": pa.array(rng.choice(ADDRESSES[:5], n)),
        "pkt_srcaddr": pa.array(rng.choice([*ADDRESSES[:4], None], n)),
    })
    encoded = pa.table({c: (table.column(c).dictionary_encode() if table.column(c).type == pa.string()
                            else table.column(c)) for c in table.column_names})
    a_cols, a_counts, a_bad, a_why = FlowColumns.from_arrow(table, now=1795564800)
    b_cols, b_counts, b_bad, b_why = FlowColumns.from_arrow(encoded, now=1795564800)
    assert a_counts == b_counts
    assert a_bad.tolist() == b_bad.tolist() and a_why.tolist() == b_why.tolist()
    for name in ("start", "bytes", "packets", "protocol", "action", "flow_direction", "traffic_path"):
        np.testing.assert_array_equal(getattr(a_cols, name), getattr(b_cols, name))
    for side in ("src", "dst"):
        for k in ("fam", "hi", "lo"):
            np.testing.assert_array_equal(getattr(getattr(a_cols, side), k), getattr(getattr(b_cols, side), k))



def test_a_dictionary_seen_again_is_parsed_once_and_a_new_one_of_its_size_anew(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet hands each batch of a row group a fresh copy of the same dictionary: parsed
    once per thread. Another dictionary of the same length gets its own values."""
    from dredge.flowlog import parser

    calls: list[int] = []
    real = parser.kernels.parse_addr_strings

    def counted(*args: Any) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(parser.kernels, "parse_addr_strings", counted)
    dictionaries = [[f"10.0.{k}.{i}" for i in range(5)] for k in range(6)]  # 6 > the 4 held
    indices = pa.array([4, 0, None, 2, 2], pa.int32())
    for _ in range(2):
        for words in dictionaries:
            encoded = pa.DictionaryArray.from_arrays(indices, pa.array(list(words)))
            _same(encoded, pa.array([words[4], words[0], None, words[2], words[2]]))
    calls.clear()
    for _ in range(3):  # fresh copies of the last one parsed
        parse_addresses(pa.DictionaryArray.from_arrays(indices, pa.array(list(dictionaries[5]))))
    assert calls == []
