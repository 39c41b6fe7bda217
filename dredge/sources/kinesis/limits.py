"""Per-shard read limits and retry waits; pure logic on an injected clock and random source.

Kinesis allows each shard 5 GetRecords calls per second and 2 MiB/s of reads, shared by
every consumer of the shard. ``ShardRateLimiter`` spaces calls and repays bytes read as a
leaky bucket, so a 6 MiB batch is followed by ~3 s of quiet instead of a string of
ProvisionedThroughputExceeded errors. ``Backoff`` is capped exponential backoff with full
jitter (AWS's recommendation): each wait is uniform in [0, min(cap, base * 2**attempt)].
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class ShardRateLimiter:
    def __init__(self, calls_per_s: float, bytes_per_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if calls_per_s <= 0 or bytes_per_s <= 0:
            raise ValueError("rates must be > 0")
        self.min_spacing = 1.0 / calls_per_s
        self.bytes_per_s = float(bytes_per_s)
        self._clock = clock
        self._next_call_at = float("-inf")
        self._debt = 0.0  # bytes not yet repaid at self._debt_at
        self._debt_at = clock()

    def _debt_now(self, now: float) -> float:
        return max(0.0, self._debt - (now - self._debt_at) * self.bytes_per_s)

    def wait_time(self) -> float:
        """Seconds to wait before the next call may be sent (0 when it may go now)."""
        now = self._clock()
        return max(0.0, self._next_call_at - now, self._debt_now(now) / self.bytes_per_s)

    def on_call(self) -> None:
        """A call is being sent now."""
        self._next_call_at = self._clock() + self.min_spacing

    def on_bytes(self, n: int) -> None:
        """A call returned ``n`` bytes of record data."""
        now = self._clock()
        self._debt = self._debt_now(now) + n
        self._debt_at = now


class Backoff:
    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError("need 0 < base_s <= max_s")
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next wait."""
        return min(self.max_s, self.base_s * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
