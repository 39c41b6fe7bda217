"""glibc's thresholds fixed for a replay (dredge.malloc): a large block freed and allocated
again reuses its pages instead of faulting them in afresh. Counted in page faults (getrusage),
never in time."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

PAGES = 10 * 4 * (16 << 20) // 4096  # 163,840: every page of every round

# 10 rounds of four 16 MB blocks (a text chunk and the pieces it was made of) made, touched
# and freed together, as a replay does with its chunks
ROUNDS = """
import resource, sys
from dredge.malloc import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
elif sys.argv[1] == "replay":  # what `dredge replay` leaves set: a one-line file replayed
    from dredge.cli import main
    assert main(["replay", sys.argv[2], "--db", sys.argv[3], "--json", "--no-progress"]) == 0
def round_():
    blocks = [bytearray(16 << 20) for _ in range(4)]
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])
round_()  # the first: its pages fault in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode, *args], capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    return int(out.stdout.splitlines()[-1])  # after a replay's own output


def test_a_freed_chunk_is_reused_not_faulted_in_again() -> None:
    assert faults("glibc") > PAGES // 2  # glibc's own thresholds: given back each round
    assert faults("keep") < PAGES // 20


def test_a_replay_keeps_what_it_frees(tmp_path: Path) -> None:
    """The command sets them (not only the function): after `dredge replay` the rounds fault
    as few pages as with keep_freed_memory() called directly."""
    logs = tmp_path / "a.log.gz"
    logs.write_bytes(gzip.compress(
        b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        b"start end action log-status\n2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 50000 6 10 1000 "
        b"1795564800 1795564860 ACCEPT OK\n"))
    assert faults("replay", str(logs), str(tmp_path / "t.duckdb")) < PAGES // 20


def test_a_setting_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from dredge.malloc import keep_freed_memory

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is False
