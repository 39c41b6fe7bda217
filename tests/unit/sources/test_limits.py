"""Per-shard read limits, on a fake clock."""

from __future__ import annotations

import random

import pytest

from dredge.sources.kinesis.limits import ShardRateLimiter
from dredge.testing import FakeClock

MiB = 1024 * 1024


def test_five_calls_per_second() -> None:
    clock = FakeClock(100.0)
    lim = ShardRateLimiter(5, 2 * MiB, clock)
    assert lim.wait_time() == 0
    calls = 0
    while clock.now < 110.0:  # 10 s of calls, each sent as soon as allowed
        clock.now += lim.wait_time()
        lim.on_call()
        lim.on_bytes(1000)
        calls += 1
    assert 50 <= calls <= 51


def test_bytes_are_repaid_at_two_mib_per_second() -> None:
    clock = FakeClock(100.0)
    lim = ShardRateLimiter(5, 2 * MiB, clock)
    lim.on_call()
    lim.on_bytes(6 * MiB)  # one big GetRecords: 3 s of budget
    assert lim.wait_time() == pytest.approx(3.0)
    clock.now += 1.0
    assert lim.wait_time() == pytest.approx(2.0)
    clock.now += 2.0
    assert lim.wait_time() == 0
    # Over a long run the byte rate stays at the limit, whatever the batch sizes.
    total = 0
    start = clock.now
    rng = random.Random(3)
    while clock.now - start < 60:
        clock.now += lim.wait_time()
        lim.on_call()
        n = rng.randint(0, 4 * MiB)
        lim.on_bytes(n)
        total += n
    assert total / (clock.now - start) <= 2 * MiB * 1.1


def test_call_spacing_and_bytes_combine() -> None:
    clock = FakeClock(100.0)
    lim = ShardRateLimiter(5, 2 * MiB, clock)
    lim.on_call()
    lim.on_bytes(100)
    assert lim.wait_time() == pytest.approx(0.2)


def test_invalid_limits_refused() -> None:
    with pytest.raises(ValueError):
        ShardRateLimiter(0, 1)
