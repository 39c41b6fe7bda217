"""glibc's thresholds fixed for a replay (dredge.malloc): a large block freed and allocated
again reuses its pages instead of faulting them in afresh. Counted in page faults (getrusage),
never in time."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# 10 rounds of four 16 MB blocks (a text chunk and the pieces it was made of) made, touched
# and freed together, as a replay does with its chunks
ROUNDS = """
import resource, sys
from dredge.malloc import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
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


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"})
    return int(out.stdout)


def test_a_freed_chunk_is_reused_not_faulted_in_again() -> None:
    pages = 10 * 4 * (16 << 20) // 4096  # 163,840: every page of every round
    assert faults("glibc") > pages // 2  # glibc's own thresholds: given back each round
    assert faults("keep") < pages // 20


def test_a_setting_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from dredge.malloc import keep_freed_memory

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is False
