"""A gzip bomb through ``dredge replay`` under an address-space limit: one process, bounded
memory, no traceback, the bomb's good lines kept and its endless line dead-lettered."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from zlib_ng import zlib_ng

pytestmark = pytest.mark.integration

LIMIT = 3 << 30  # address space: the bomb inflates to 2 GiB, far more than fits beside Python


def bomb(path: Path, zeros: int) -> None:
    c = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 31)  # gzip -1, as the report made it
    with path.open("wb") as fh:
        fh.write(c.compress(b"version account-id interface-id srcaddr dstaddr srcport dstport "
                            b"protocol packets bytes start end action log-status\n"))
        fh.write(c.compress(b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 50000 6 10 840 "
                            b"1700000000 1700000060 ACCEPT OK\n"))
        piece = bytes(16 << 20)
        for _ in range(zeros // len(piece)):
            fh.write(c.compress(piece))
        fh.write(c.flush())


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_gzip_bomb_replays_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.log.gz"
    bomb(path, 2 << 30)
    db = tmp_path / "b.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "dredge.cli", "replay", str(path), "--db", str(db), "--no-progress"],
        capture_output=True, text=True, preexec_fn=limited, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "records      1 (1 flows" in proc.stdout
    dead = [orjson.loads(line) for line in (tmp_path / "b.deadletter.jsonl").read_bytes().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [(3, "line_too_long")]
    assert dead[0]["length"] >= 1 << 20 and len(dead[0]["text"]) <= 256


def test_a_byte_order_mark_before_a_custom_header_loses_nothing(tmp_path: Path) -> None:
    from dredge.cli import main

    header = "version srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    rows = [f"2 10.0.0.{i} 10.0.1.{i} 443 5{i:04d} 6 {i + 1} {840 * (i + 1)} 1764547200 1764547260 ACCEPT OK"
            for i in range(1, 50)]
    path = tmp_path / "bom.log"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([header, *rows]).encode() + b"\n")
    db = tmp_path / "b.duckdb"
    assert main(["replay", str(path), "--db", str(db), "--no-progress"]) == 0
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("SELECT SUM(flows), SUM(bytes) FROM flows").fetchone()
    assert got == (49, sum(840 * (i + 1) for i in range(1, 50)))
