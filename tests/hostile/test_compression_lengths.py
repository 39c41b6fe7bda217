"""Compression damage and bombs, line and field lengths: through ``parse`` and ``replay``,
in bounded memory (subprocesses under an address-space limit), the records before the
damage kept, dead letters capped at 4 KiB of text."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.hostile.conftest import HEADER, RECORD, accepted, cli, no_traceback, sub

GOOD = f"{HEADER}\n" + f"{RECORD}\n" * 200


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _damaged(kind: str) -> bytes:
    data = _gz(GOOD)
    if kind == "truncated":
        return data[: len(data) // 2]
    if kind == "flipped":
        mid = len(data) // 2
        return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
    if kind == "bad_crc":
        return data[:-8] + b"\0\0\0\0" + data[-4:]
    if kind == "header_only":
        return data[:10]
    if kind == "trailing_junk":
        return data + b"junk after the member"
    if kind == "two_members":
        return data + _gz(f"{RECORD}\n")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "flipped", "bad_crc", "header_only",
                                  "trailing_junk", "two_members"])
def test_parse_damaged_gzip(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(_damaged(kind))
    r = no_traceback(cli("parse", p))
    assert r.rc in (0, 1) and len(r.out.splitlines()) <= 201


@pytest.mark.parametrize("kind", ["truncated", "flipped", "bad_crc", "header_only"])
def test_replay_damaged_gzip_keeps_what_precedes(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(_damaged(kind))
    recovered = 0
    with gzip.open(io.BytesIO(p.read_bytes()), "rt") as fh:
        try:
            for line in fh:
                recovered += line.endswith("\n") and line.startswith("2 ")
        except (EOFError, OSError, zlib.error):
            pass
    r = accepted(cli("replay", p, "--db", tmp_path / "d.duckdb", "--json", "--no-progress"))
    s = json.loads(r.out)
    assert s["flows"] >= recovered and s["flows"] <= 200


@pytest.mark.parametrize("magic", [b"BZh91AY&SY", b"\x28\xb5\x2f\xfd", b"PK\x03\x04",
                                   b"\xfd7zXZ\x00", b"PAR1"])
def test_other_containers_are_refused_per_line_or_per_file(tmp_path: Path, magic: bytes) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(magic + bytes(range(256)) * 4)
    no_traceback(cli("parse", p))
    r = no_traceback(cli("replay", p, "--db", tmp_path / "d.duckdb", "--json", "--no-progress"))
    assert r.rc in (0, 1) and json.loads(r.out)["flows"] == 0


def test_parse_parquet_the_generator_writes(tmp_path: Path) -> None:
    t = pa.table({"version": [2], "srcaddr": ["10.0.0.1"], "dstaddr": ["10.0.0.2"],
                  "bytes": [100], "packets": [1], "start": [1795600800], "end": [1795600860],
                  "action": ["ACCEPT"], "log_status": ["OK"]})
    p = tmp_path / "x.parquet"
    pq.write_table(t, p)
    r = cli("parse", p)
    if r.rc == 0:
        assert json.loads(accepted(r).out)["bytes"] == 100
    else:
        no_traceback(r)
        assert len(r.error_lines) == 1 and "parquet" in r.err.lower()


def test_parse_parquet_applies_the_bounds(tmp_path: Path) -> None:
    """The same plausibility bounds as text: a port past 65535, a start centuries away."""
    t = pa.table({"version": [2, 2, 2], "srcaddr": ["10.0.0.1"] * 3, "dstaddr": ["10.0.0.2"] * 3,
                  "srcport": [443, 70000, 443], "dstport": [50000, 50000, 50000],
                  "bytes": [100, 100, 100], "packets": [1, 1, 1],
                  "start": [1795600800, 1795600800, 99999999999],
                  "end": [1795600860, 1795600860, 99999999999],
                  "action": ["ACCEPT"] * 3, "log_status": ["OK"] * 3})
    p = tmp_path / "x.parquet"
    pq.write_table(t, p)
    r = no_traceback(cli("parse", p))
    assert r.rc == 1 and [json.loads(x)["srcport"] for x in r.out.splitlines()] == [443]
    assert ":2: out_of_range (srcport)" in r.err and ":3: out_of_range (start)" in r.err


def test_parse_line_past_the_limit_in_bounded_memory(tmp_path: Path) -> None:
    p = tmp_path / "long.log.gz"
    with gzip.open(p, "wb", compresslevel=1) as fh:
        fh.write(f"{HEADER}\n{RECORD}\n".encode())
        fh.write(b"x" * (600 << 20))  # one 600 MiB line, no newline
        fh.write(f"\n{RECORD}\n".encode())
    r = sub("parse", p)
    assert "Traceback" not in r.err and r.rc == 1, str(r)
    # the endless line compresses past the bomb ratio: what precedes it is kept, it is reported
    assert r.out.splitlines()[:1] and json.loads(r.out.splitlines()[0])["bytes"] == 840
    assert "line_too_long" in r.err or "gzip bomb" in r.err
    assert len(r.err) < 10_000  # the dropped line is not echoed whole


def test_parse_stdin_bomb_in_bounded_memory() -> None:
    """stdin is not seekable: a huge line must still cost bounded memory."""
    body = f"{RECORD}\n".encode() + b"y" * (1200 << 20) + f"\n{RECORD}\n".encode()
    r = sub("parse", stdin=body)
    assert "Traceback" not in r.err and r.rc == 1, str(r)
    assert len(r.out.splitlines()) == 2 and len(r.err) < 10_000


def test_replay_long_line_dead_letter_is_capped(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(f"{HEADER}\n{RECORD}\n".encode() + b"z" * (3 << 20) + f"\n{RECORD}\n".encode())
    dl = tmp_path / "dl.jsonl"
    r = accepted(cli("replay", p, "--dead-letter", dl, "--db", tmp_path / "d.duckdb", "--json",
                     "--no-progress"))
    assert json.loads(r.out)["flows"] == 2
    (letter,) = [json.loads(x) for x in dl.read_text().splitlines()]
    # a line shorter than a read chunk reaches the parser whole, a longer one is dropped as it
    # streams: the same reason, the same capped letter, wherever the chunk boundaries fall
    assert letter["reason"] == "line_too_long" and letter["line"] == 3
    assert letter["length"] == 3 << 20 and letter["text"] == "z" * 256


@pytest.mark.parametrize("size", [(1 << 20) + 1, 2 << 20, 20 << 20])
def test_replay_long_line_reason_does_not_depend_on_chunking(tmp_path: Path, size: int) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(f"{HEADER}\n{RECORD}\n".encode() + b"7" * size + f"\n{RECORD}\n".encode())
    dl = tmp_path / "dl.jsonl"
    r = accepted(cli("replay", p, "--dead-letter", dl, "--db", tmp_path / "d.duckdb", "--json",
                     "--no-progress"))
    assert json.loads(r.out)["flows"] == 2
    (letter,) = [json.loads(x) for x in dl.read_text().splitlines()]
    assert (letter["reason"], letter["line"]) == ("line_too_long", 3)
    assert letter["length"] >= min(size, 1 << 20) and len(letter["text"]) <= 256


@pytest.mark.parametrize("line", [
    " ".join(["2"] * 10_000),  # ten thousand fields
    RECORD.replace("eni-0a1b2c3d", "eni-" + "a" * 500_000),  # one 500 KB field
    " " * 100_000 + RECORD,  # leading blanks
    "\t".join(RECORD.split()),  # tabs, not spaces
])
def test_long_and_odd_lines_are_dead_lettered_or_kept(tmp_path: Path, line: str) -> None:
    p = tmp_path / "x.log"
    p.write_text(f"{HEADER}\n{RECORD}\n{line}\n{RECORD}\n")
    dl = tmp_path / "dl.jsonl"
    r = accepted(cli("replay", p, "--dead-letter", dl, "--db", tmp_path / "d.duckdb", "--json",
                     "--no-progress"))
    s = json.loads(r.out)
    assert s["flows"] + s["malformed"] == 3 and s["flows"] >= 2
    if dl.exists():
        for letter in dl.read_text().splitlines():
            assert len(json.loads(letter)["text"]) <= 4096


@pytest.mark.parametrize("text", ["", "\n\n\n", HEADER, f"{HEADER}\n", "\n" * 100_000])
def test_empty_and_blank_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "x.log"
    p.write_text(text)
    accepted(cli("parse", p))
    r = accepted(cli("replay", p, "--db", tmp_path / "d.duckdb", "--json", "--no-progress"))
    assert json.loads(r.out)["flows"] == 0


def test_format_with_too_many_fields() -> None:
    r = no_traceback(cli("parse", "--format", " ".join(["srcaddr"] * 5000), stdin=b""))
    assert r.rc == 2


@pytest.mark.parametrize("args", [["--by", ",".join(["src_app"] * 2000)],
                                  ["--where", "src_app=" + "a" * 1_000_000],
                                  ["--where", "src_app=" + "|".join(["a"] * 50_000)]])
def test_query_long_options(store: Path, args: list[str]) -> None:
    r = no_traceback(cli("query", "top", "--db", store, *args))
    assert r.rc in (0, 2)
