"""Per-shard read limits; pure logic on an injected clock.

Kinesis allows each shard 5 GetRecords calls per second and 2 MiB/s of reads, shared by
every consumer of the shard. ``ShardRateLimiter`` spaces calls and repays bytes read as a
leaky bucket, so a 6 MiB batch is followed by ~3 s of quiet instead of a string of
ProvisionedThroughputExceeded errors. (Retry waits: ``dredge.aws.Backoff``.)
"""

from __future__ import annotations

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
