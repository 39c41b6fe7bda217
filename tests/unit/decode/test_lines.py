"""Canonical line breaks for plain text, on both the small (bytes) and large (numpy) paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.decode.lines import normalize_lines, split_lines


def reference(text: bytes) -> list[bytes]:
    """What normalize_lines promises, written line by line."""
    return [s for line in text.split(b"\n") if (s := line.strip(b" \t\r"))]


def lines_of(text: bytes) -> list[bytes]:
    normalized, n = normalize_lines(text)
    as_bytes = bytes(normalized)
    split = as_bytes.split(b"\n") if as_bytes else []
    assert len(split) == n
    return split


@pytest.mark.parametrize("pad", [0, 20_000])  # 20 kB pushes the text onto the numpy path
@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (b"", []),
        (b"\n", []),
        (b"\r\n\r\n", []),
        (b"  \t \n", []),
        (b"a", [b"a"]),
        (b"a\n", [b"a"]),
        (b"a\r\nb\r\n", [b"a", b"b"]),
        (b"\n\na\n\n\nb\n\n", [b"a", b"b"]),
        (b"a \n \t\n  b\t", [b"a", b"b"]),
        (b"a b  c\nd", [b"a b  c", b"d"]),  # blanks inside a line are the parser's business
        (b"a" + b" " * 9 + b"\n" + b"\t" * 9 + b"b", [b"a", b"b"]),  # more blanks than rounds
    ],
)
def test_normalize(text: bytes, lines: list[bytes], pad: int) -> None:
    filler = [b"x" * 99] * (pad // 100)
    padded = b"\n".join([*filler, text]) if pad else text
    assert lines_of(padded) == filler + lines


def test_canonical_text_is_returned_without_a_copy() -> None:
    text = b"\n".join([b"2 123 eni-1 ACCEPT OK"] * 2000)
    normalized, n = normalize_lines(text)
    assert normalized is text
    assert n == 2000
    normalized, n = normalize_lines(b"\n\n" + text + b"\r\n")
    assert isinstance(normalized, memoryview)  # a view without the edge newlines
    assert bytes(normalized) == text


pieces = st.sampled_from([b"a", b"bc", b"x y", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\n\n"])


@given(st.lists(pieces, max_size=60).map(b"".join))
def test_small_path_matches_reference(text: bytes) -> None:
    assert lines_of(text) == reference(text)


@settings(max_examples=300)
@given(st.lists(st.one_of(pieces, st.just(b"w" * 3000)), min_size=1, max_size=80).map(b"".join))
def test_large_path_matches_reference(text: bytes) -> None:
    text = text + b"\n" + b"z" * 17_000 if len(text) <= 16 * 1024 else text
    assert lines_of(text) == reference(text)


@given(st.lists(st.lists(pieces, max_size=12).map(b"".join), min_size=1, max_size=12))
def test_split_lines_offsets_tell_which_piece_a_line_came_from(pieces_: list[bytes]) -> None:
    text = b"\n".join(pieces_)
    lines, starts = split_lines(text)
    as_bytes = bytes(lines)
    assert (as_bytes.split(b"\n") if as_bytes else []) == reference(text)
    offsets = np.cumsum([0] + [len(p) + 1 for p in pieces_[:-1]])
    piece_of_line = np.searchsorted(offsets, starts, side="right") - 1
    expected = [i for i, p in enumerate(pieces_) for _ in reference(p)]
    assert piece_of_line.tolist() == expected
