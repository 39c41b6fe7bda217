"""Per-shard read limits and backoff, on a fake clock."""

from __future__ import annotations

import random

import pytest

from dredge.sources.kinesis.limits import Backoff, ShardRateLimiter
from dredge.sources.kinesis.reader import SEQUENCE, Position, furthest
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


def test_backoff_full_jitter_capped_and_reset() -> None:
    b = Backoff(0.1, 2.0, random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(b.ceiling())
        d = b.next_delay()
        assert 0 <= d <= ceilings[-1]
    assert ceilings[:5] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert ceilings[5:] == pytest.approx([2.0, 2.0, 2.0])
    b.reset()
    assert b.ceiling() == pytest.approx(0.1)
    many = [Backoff(1.0, 1.0, random.Random(i)).next_delay() for i in range(200)]
    assert 0.4 < sum(many) / len(many) < 0.6  # uniform on [0, 1]: jittered, not fixed


def test_invalid_limits_refused() -> None:
    with pytest.raises(ValueError):
        ShardRateLimiter(0, 1)
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)


def test_positions_order_along_a_shard() -> None:
    th = Position.from_checkpoint("TRIM_HORIZON")
    a = Position.from_checkpoint("49590338271490256608559692538361571095921575989136588898", 0)
    b = Position.from_checkpoint("49590338271490256608559692538361571095921575989136588898", 3)
    c = Position.from_checkpoint("49590338271490256608559692540925702759324208523137515618", 0)
    end = Position.from_checkpoint("SHARD_END")
    assert a.kind == SEQUENCE
    assert furthest(th, a) == a and furthest(a, th) == a
    assert furthest(a, b) == b and furthest(b, c) == c
    assert furthest(c, end) == end and furthest(end, th) == end
    assert str(b).endswith("/3")
