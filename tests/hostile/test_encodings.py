"""Encodings, byte-order marks and control bytes, through ``parse``, ``replay`` and the
index loaders: non-UTF-8 bytes are dead-lettered (or refused in one line), never a traceback;
the good records around them are kept."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import HEADER, RECORD, accepted, cli, no_traceback, refused

BAD_BYTES = [b"\xff\xfe\x00", b"\xc3\x28", b"\x80abc", b"\xed\xa0\x80", b"caf\xe9"]


@pytest.mark.parametrize("junk", BAD_BYTES)
def test_parse_stdin_non_utf8_line_is_dead_lettered(junk: bytes) -> None:
    data = f"{RECORD}\n".encode() + junk + b" 10.0.0.1\n" + f"{RECORD}\n".encode()
    r = accepted(cli("parse", stdin=data), rc=1)
    assert len(r.out.splitlines()) == 2
    assert "malformed: <stdin>:2:" in r.err


def test_parse_file_non_utf8_field_value(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(f"{HEADER}\n{RECORD}\n".encode()
                  + RECORD.replace("ACCEPT", "ACC\xc9PT").encode("latin-1") + b"\n")
    r = accepted(cli("parse", p), rc=1)
    assert len(r.out.splitlines()) == 1 and f"{p}:3:" in r.err


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])
def test_parse_byte_order_marks(tmp_path: Path, bom: bytes) -> None:
    """A UTF-8 BOM is skipped (the header is read); a UTF-16 one is not: the line it starts is
    malformed, nothing crashes."""
    p = tmp_path / "bom.log"
    p.write_bytes(bom + f"{HEADER}\n{RECORD}\n".encode())
    r = cli("parse", p)
    if bom == b"\xef\xbb\xbf":
        accepted(r)
        assert json.loads(r.out)["bytes"] == 840
    else:  # the header is not read (it is reported), the record after it is v2 as it is
        no_traceback(r)
        assert r.rc == 1 and ":1: " in r.err and len(r.out.splitlines()) == 1


def test_parse_utf16_file(tmp_path: Path) -> None:
    p = tmp_path / "u16.log"
    p.write_bytes(f"{HEADER}\n{RECORD}\n".encode("utf-16"))
    r = no_traceback(cli("parse", p))
    assert r.rc == 1


def test_replay_bom_and_custom_header_keeps_records(tmp_path: Path, owners: Path) -> None:
    p = tmp_path / "bom.log"
    p.write_bytes(b"\xef\xbb\xbf" + b"srcaddr dstaddr bytes packets start action\n"
                  b"10.0.0.1 10.0.0.2 100 1 1795600800 ACCEPT\n")
    r = accepted(cli("replay", p, "--index", owners, "--db", tmp_path / "d.duckdb",
                     "--json", "--no-progress"))
    summary = json.loads(r.out)
    assert summary["flows"] == 1 and summary["malformed"] == 0


def test_replay_non_utf8_lines_dead_lettered_with_origin(tmp_path: Path, owners: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(f"{HEADER}\n{RECORD}\n".encode() + b"\xff\xfe\xfd \x00\x01\x02\n"
                  + f"{RECORD}\n".encode())
    dl = tmp_path / "dl.jsonl"
    r = accepted(cli("replay", p, "--index", owners, "--db", tmp_path / "d.duckdb",
                     "--dead-letter", dl, "--json", "--no-progress"))
    summary = json.loads(r.out)
    assert summary["flows"] == 2 and summary["malformed"] == 1
    letter = json.loads(dl.read_text().splitlines()[0])
    assert letter["file"] == str(p) and letter["line"] == 3


@pytest.mark.parametrize("ctrl", [b"\x00", b"\x1b[31m", b"\r", b"\x0b", b"\x0c", b"\x7f"])
def test_parse_control_bytes_in_a_field(ctrl: bytes) -> None:
    bad = RECORD.replace("eni-0a1b2c3d", "eni-0a1b" + ctrl.decode("latin-1") + "2c3d")
    r = no_traceback(cli("parse", stdin=f"{RECORD}\n{bad}\n".encode("latin-1")))
    assert r.out.splitlines()[0].startswith(b"{")


def test_parse_crlf_line_endings() -> None:
    r = accepted(cli("parse", stdin=f"{HEADER}\r\n{RECORD}\r\n{RECORD}\r\n".encode()))
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert len(rows) == 2 and rows[0]["log_status"] == "OK"


@pytest.mark.parametrize("data", [b"\xff\xfe{}", b'{"ip": "10.0.0.1", "app": "caf\xe9", "start": 0}\n',
                                  b"\x00\x00\x00\x00"])
def test_index_lookup_non_utf8_ownership_file(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "o.jsonl"
    p.write_bytes(data)
    no_traceback(cli("index", "lookup", "10.0.0.1", "--at", "100", "--index", p))


@pytest.mark.parametrize("data", [b"cidr,app,type,region\n10.0.0.0/8,caf\xe9,x,us-east-1\n",
                                  b"\xff\xfe\x00c\x00i", b'{"prefixes": "\xff"}'])
def test_index_lookup_non_utf8_cidr_file(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / ("n.json" if data.startswith(b"{") else "n.csv")
    p.write_bytes(data)
    no_traceback(cli("index", "lookup", "10.0.0.1", "--cidrs", p))


def test_config_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "d.toml"
    p.write_bytes(b'log_level = "caf\xe9"\n')
    refused(cli("run", "--config", p), 2, "utf-8")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.binary(max_size=200), max_size=8))
def test_parse_random_bytes_never_crash(lines: list[bytes]) -> None:
    """Any bytes between good records: the good ones are all printed, the rest counted."""
    data = b"\n".join([RECORD.encode(), *[x.replace(b"\n", b" ") for x in lines],
                       RECORD.encode()]) + b"\n"
    r = no_traceback(cli("parse", stdin=data))
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert sum(1 for row in rows if row.get("interface_id") == "eni-0a1b2c3d") >= 2
    assert r.rc in (0, 1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300))
def test_replay_random_file_never_crash(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.log"
        p.write_bytes(f"{HEADER}\n{RECORD}\n".encode() + body + b"\n" + f"{RECORD}\n".encode())
        r = no_traceback(cli("replay", p, "--db", Path(d) / "d.duckdb", "--json",
                             "--no-progress"))
        assert r.rc == 0 and json.loads(r.out)["flows"] >= 2


def test_replay_bom_without_a_header_line_keeps_the_first_record(tmp_path: Path, owners: Path) -> None:
    """No header: the default format reads the first line, the BOM skipped, not malformed."""
    p = tmp_path / "bom.log"
    p.write_bytes(b"\xef\xbb\xbf" + f"{RECORD}\n{RECORD}\n".encode())
    r = accepted(cli("replay", p, "--index", owners, "--db", tmp_path / "d.duckdb",
                     "--json", "--no-progress"))
    summary = json.loads(r.out)
    assert summary["flows"] == 2 and summary["malformed"] == 0
