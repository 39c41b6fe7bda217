"""Hostile files through the file source: lines without end, gzip bombs, damaged archives.

Memory must stay bounded by the chunk size whatever a file holds, and what precedes damage
must be kept (as much as ``gzip -dc`` recovers)."""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from zlib_ng import zlib_ng

from dredge.sources import files
from dredge.sources.files import FileRef, ReadState, text_chunks


def ref_of(path: Path) -> FileRef:
    return FileRef(str(path), path.stat().st_size)


def read_all(path: Path, kind: str, chunk: int = 4096, max_line: int = 1000
             ) -> tuple[list[bytes], ReadState]:
    state = ReadState()
    return list(text_chunks(ref_of(path), kind, state, chunk, max_line)), state


def test_a_long_line_is_dropped_and_its_number_kept(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    # longer than one read (64 KiB): a line that fits in a read goes on to the parser, which
    # dead-letters it as malformed; one that does not is dropped here, bounding memory
    p.write_bytes(b"one\n" + b"x" * 300_000 + b"\nthree\nfour\n")
    chunks, state = read_all(p, "text")
    assert b"".join(chunks) == b"one\n\nthree\nfour\n"  # the empty line keeps the numbering
    assert [(ll.line, ll.length) for ll in state.long_lines] == [(2, 300_000)]
    assert state.long_lines[0].head == b"x" * 256
    assert max(len(c) for c in chunks) <= 4096 + 1000


def test_a_long_last_line_without_newline(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntwo\n" + b"y" * 500_000)
    chunks, state = read_all(p, "text")
    assert b"".join(chunks) == b"one\ntwo\n\n"
    assert [(ll.line, ll.length) for ll in state.long_lines] == [(3, 500_000)]


def test_lines_at_the_limit_are_kept(tmp_path: Path) -> None:
    body = b"".join(b"z" * 999 + b"\n" for _ in range(50))
    p = tmp_path / "a.log"
    p.write_bytes(body)
    chunks, state = read_all(p, "text")
    assert b"".join(chunks) == body
    assert state.long_lines == []
    assert state.lines == 50


def test_a_gzip_bomb_is_stopped_and_memory_stays_bounded(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "INFLATION_FLOOR", 4 << 20)
    p = tmp_path / "bomb.log.gz"
    c = zlib_ng.compressobj(9, zlib_ng.DEFLATED, 31)
    with p.open("wb") as fh:
        fh.write(c.compress(b"1.2.3.4 ok\n" * 10))
        for _ in range(64):  # 1 GiB of zeros, a few hundred KB on disk
            fh.write(c.compress(bytes(16 << 20)))
        fh.write(c.flush())
    assert p.stat().st_size < 5 << 20
    state = ReadState()
    biggest = 0
    total = 0
    for chunk in text_chunks(ref_of(p), "gzip", state, 1 << 20, 1 << 16):
        biggest = max(biggest, len(chunk))
        total += len(chunk)
    assert state.truncated and state.error is not None and "gzip bomb" in state.error
    assert state.text_bytes < 64 << 20  # stopped soon after the floor, not at 1 GiB
    assert biggest <= (1 << 20) + (1 << 16)
    assert total == len(b"1.2.3.4 ok\n" * 10) + 1  # the good lines + the dropped line's place
    assert len(state.long_lines) == 1 and state.long_lines[0].line == 11


def test_ordinary_flow_logs_are_not_taken_for_a_bomb(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "INFLATION_FLOOR", 1 << 16)
    lines = b"".join(b"2 123456789012 eni-0a1b2c3d 10.0.%d.%d 10.1.%d.%d 443 %d 6 10 %d "
                     b"1700000000 1700000060 ACCEPT OK\n" % (i % 250, i % 200, i % 100, i % 50,
                                                            30000 + i % 1000, 840 + i % 7)
                     for i in range(50_000))
    p = tmp_path / "flows.log.gz"
    p.write_bytes(gzip.compress(lines, 9))
    chunks, state = read_all(p, "gzip", chunk=1 << 20, max_line=1 << 16)
    assert not state.truncated
    assert b"".join(chunks) == lines


def damaged_gzip(tmp_path: Path) -> tuple[Path, bytes]:
    """A gzip damaged in the middle so that inflating fails at the damage (an invalid block,
    not only a wrong checksum at the end): the case where a reader can lose good text."""
    lines = b"".join(b"record %08d %s\n" % (i, b"abcdefgh" * (i % 5)) for i in range(400_000))
    clean = gzip.compress(lines, 6, mtime=0)
    p = tmp_path / "damaged.log.gz"
    for seed in range(200):
        rng = random.Random(seed)
        data = bytearray(clean)
        mid = rng.randrange(len(data) // 4, 3 * len(data) // 4)
        data[mid:mid + 20] = bytes(rng.randrange(256) for _ in range(20))
        d = zlib_ng.decompressobj(wbits=31)
        try:
            d.decompress(bytes(data))
        except zlib_ng.error as exc:  # type: ignore[misc]
            if "invalid" in str(exc):
                p.write_bytes(bytes(data))
                return p, lines
    raise AssertionError("no damage found that fails inside the stream")


def good_prefix_lines(out: bytes, original: bytes) -> int:
    n = 0
    for got, want in zip(out.split(b"\n"), original.split(b"\n"), strict=False):
        if got != want:
            break
        n += 1
    return n


@pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip(1) as the reference")
def test_damage_in_the_middle_keeps_what_gzip_keeps(tmp_path: Path) -> None:
    p, original = damaged_gzip(tmp_path)
    reference = subprocess.run(["gzip", "-dc", str(p)], capture_output=True).stdout
    chunks, state = read_all(p, "gzip", chunk=16 << 20, max_line=1 << 16)  # replay's chunks
    assert state.truncated and state.error is not None and state.error.startswith("corrupt gzip")
    got = b"".join(chunks)
    want = good_prefix_lines(reference, original)
    assert want > 100_000  # the damage is far into the file
    assert good_prefix_lines(got, original) >= want - 1
