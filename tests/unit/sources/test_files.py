"""Replay source: discovery, gzip members, truncation, chunks on line boundaries."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dredge.errors import SourceError
from dredge.sources.files import FileRef, ReadState, discover, sniff, text_chunks

LINES = b"".join(b"2 1 eni-1 10.0.0.%d 10.0.0.2 1 2 6 1 100 0 60 ACCEPT OK\n" % i for i in range(2000))


def ref(p: Path) -> FileRef:
    return FileRef(str(p), p.stat().st_size)


def test_discover_walks_folders_and_skips_other_names(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.log.gz").write_bytes(gzip.compress(LINES))
    (tmp_path / "a" / "y.parquet").write_bytes(b"PAR1")
    (tmp_path / "a" / "notes.md").write_text("hi")
    (tmp_path / "a" / ".hidden.gz").write_bytes(b"")
    found, skipped = discover([str(tmp_path)])
    assert [Path(f.path).name for f in found] == ["x.log.gz", "y.parquet"]
    assert any("notes.md" in s for s in skipped)
    with pytest.raises(SourceError, match="no such file"):
        discover([str(tmp_path / "missing")])


def test_chunks_end_on_line_boundaries_and_cover_everything(tmp_path: Path) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(gzip.compress(LINES[:50_000]) + gzip.compress(LINES[50_000:]))  # two members
    assert sniff(ref(p)) == "gzip"
    state = ReadState()
    chunks = list(text_chunks(ref(p), "gzip", state, chunk_bytes=4096))
    assert len(chunks) > 10
    assert all(c.endswith(b"\n") for c in chunks)
    assert b"".join(chunks) == LINES and not state.truncated


def test_truncated_gzip_keeps_complete_lines(tmp_path: Path) -> None:
    data = gzip.compress(LINES)
    p = tmp_path / "cut.log.gz"
    p.write_bytes(data[: len(data) // 2])
    state = ReadState()
    text = b"".join(text_chunks(ref(p), "gzip", state, chunk_bytes=4096))
    assert state.truncated and "truncated" in (state.error or "")
    assert text.endswith(b"\n") and LINES.startswith(text) and len(text) > 1000
    assert (text + state.tail) == LINES[: len(text) + len(state.tail)]


def test_corrupt_gzip_is_reported_not_raised(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(LINES))
    data[200:260] = b"\x00" * 60
    p = tmp_path / "bad.log.gz"
    p.write_bytes(bytes(data))
    state = ReadState()
    list(text_chunks(ref(p), "gzip", state))
    assert state.truncated and state.error


def test_plain_text(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(LINES[:300])
    assert sniff(ref(p)) == "text"
    assert b"".join(text_chunks(ref(p), "text", ReadState())) == LINES[:300]
