"""text_chunks' invariants on any text, plain and gzip, any chunk size: the chunks put back
together are the text, each ends on a line boundary, none is larger than it must be."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.sources.files import FileRef, ReadState, text_chunks

LINE = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" "))


@settings(max_examples=80, deadline=None)
@given(lines=st.lists(LINE, max_size=400), end_newline=st.booleans(), chunk=st.integers(4096, 20_000),
       zipped=st.booleans())
def test_chunks_rebuild_the_text_on_line_boundaries(tmp_path_factory: object, lines: list[bytes],
                                                    end_newline: bool, chunk: int, zipped: bool) -> None:
    text = b"\n".join(lines) + (b"\n" if end_newline and lines else b"")
    folder: Path = tmp_path_factory.mktemp("c")  # type: ignore[attr-defined]
    p = folder / ("x.log.gz" if zipped else "x.log")
    p.write_bytes(gzip.compress(text) if zipped else text)
    state = ReadState()
    chunks = list(text_chunks(FileRef(str(p), p.stat().st_size), "gzip" if zipped else "text", state, chunk))
    assert b"".join(chunks) == text
    assert all(type(c) is bytes and c for c in chunks)
    assert all(c.endswith(b"\n") for c in chunks[:-1])
    for c in chunks[:-1]:  # larger than a chunk only when one line is
        assert len(c) <= chunk or c.count(b"\n") == 1
    assert state.lines == text.count(b"\n") and not state.long_lines and not state.truncated
