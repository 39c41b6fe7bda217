"""Canonical line breaks for plain text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dredge.decode.lines import count_lines, normalize_lines


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
    ],
)
def test_normalize(text: bytes, lines: list[bytes]) -> None:
    normalized = normalize_lines(text)
    assert (normalized.split(b"\n") if normalized else []) == lines
    assert count_lines(normalized) == len(lines)


@given(
    st.lists(st.sampled_from([b"a", b"bc", b" ", b"\t", b"\r", b"\n", b"\r\n", b"x y"])).map(
        b"".join
    )
)
def test_normalize_matches_a_line_by_line_reference(text: bytes) -> None:
    expected = [s for line in text.split(b"\n") if (s := line.strip(b" \t\r"))]
    normalized = normalize_lines(text)
    assert (normalized.split(b"\n") if normalized else []) == expected
    assert count_lines(normalized) == len(expected)
