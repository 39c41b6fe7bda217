"""Holdback: parsed flow batches wait a fixed processing-time delay before enrichment, so
that assignment events that arrive late are in the index when the batch is looked up.

The daemon puts it between parse and enrich::

    holdback = Holdback(HoldbackConfig(delay_s=120))
    await holdback.start()
    # reader task, per shard:
    await holdback.put(shard_id, (columns, position), rows=columns.n)  # waits when full
    # enrich task:
    shard_id, (columns, position) = await holdback.get()  # the oldest batch, once due
    snapshot = index.current()                            # one snapshot per batch
    ... enrich, roll up, sink; checkpoint ``position`` only after the sink acknowledged
    # lease lost for a shard: holdback.discard(shard_id)  (its batches are read again by
    # the new owner from the last checkpoint)
    await holdback.stop()

A held batch is *not* processed: its position must not be checkpointed, and nothing after
it in the same shard either (batches come out in the order they went in). On stop, held
batches are dropped, not released: they were never checkpointed, so the next run reads
them again. (``drain()`` hands them all out at once for a caller that wants to finish
them now, with less than the full delay.)

Time is processing time from an injectable monotonic clock; the flow's own time plays no
part (the index lookup uses it). Memory is bounded by ``max_rows``: ``put`` waits while the
held rows would exceed it (backpressure on the readers); a single batch larger than the
bound is still accepted when nothing else is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dredge.errors import ConfigError
from dredge.telemetry.metrics import counter, gauge

T = TypeVar("T")

held_rows = gauge("dredge_holdback_held_rows", "Flow rows waiting in the holdback.")
held_batches = gauge("dredge_holdback_held_batches", "Batches waiting in the holdback.")
batches_total = counter("dredge_holdback_batches_total",
                        "Batches leaving the holdback, by outcome (released, discarded, dropped).",
                        ["outcome"])


@dataclass(frozen=True)
class HoldbackConfig:
    delay_s: float = 0.0  # 0 = pass batches straight through
    max_rows: int = 5_000_000

    def validate(self) -> None:
        if not 0 <= self.delay_s <= 3600:
            raise ConfigError("delay_s", "between 0 and 3600 seconds")
        if self.max_rows < 1:
            raise ConfigError("max_rows", "must be >= 1")


@dataclass
class _Held(Generic[T]):
    due: float
    key: Hashable
    item: T
    rows: int


class Holdback(Generic[T]):
    """A FIFO with a release time per entry. One event loop; not thread-safe."""

    def __init__(self, config: HoldbackConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or HoldbackConfig()
        self.config.validate()
        self.clock = clock
        self._queue: deque[_Held[T]] = deque()
        self._rows = 0
        self._changed: asyncio.Condition | None = None
        self._stopped = False
        self._wakers: set[asyncio.Task[None]] = set()

    @property
    def held_batches(self) -> int:
        return len(self._queue)

    @property
    def held_rows(self) -> int:
        return self._rows

    def oldest_age(self) -> float:
        """Seconds the oldest held batch has waited (0 if none)."""
        return self.clock() - (self._queue[0].due - self.config.delay_s) if self._queue else 0.0

    async def start(self) -> None:
        if self._changed is None:
            self._changed = asyncio.Condition()

    async def stop(self) -> None:
        """Drop what is held (never checkpointed: read again next run); wake waiters."""
        if self._stopped:
            return
        self._stopped = True
        n = len(self._queue)
        self._queue.clear()
        self._set_rows(0)
        if n:
            batches_total.labels("dropped").inc(n)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def __aenter__(self) -> Holdback[T]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            raise RuntimeError("Holdback used before start()")
        return self._changed

    def _set_rows(self, rows: int) -> None:
        self._rows = rows
        held_rows.set(rows)
        held_batches.set(len(self._queue))

    async def put(self, key: Hashable, item: T, rows: int) -> None:
        """Hold ``item`` (from shard ``key``) for ``delay_s``; waits while full."""
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: self._stopped or not self._queue
                                or self._rows + rows <= self.config.max_rows)
            if self._stopped:
                raise RuntimeError("Holdback stopped")
            self._queue.append(_Held(self.clock() + self.config.delay_s, key, item, rows))
            self._set_rows(self._rows + rows)
            cond.notify_all()

    async def get(self) -> tuple[Hashable, T]:
        """The oldest batch, as soon as its delay has passed."""
        cond = self._cond()
        async with cond:
            while True:
                if self._stopped:
                    raise RuntimeError("Holdback stopped")
                if self._queue:
                    wait = self._queue[0].due - self.clock()
                    if wait <= 0:
                        h = self._queue.popleft()
                        self._set_rows(self._rows - h.rows)
                        batches_total.labels("released").inc()
                        cond.notify_all()
                        return h.key, h.item
                    # woken early by a put/discard/stop, or on time
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cond.wait(), wait)
                else:
                    await cond.wait()

    def ready(self) -> list[tuple[Hashable, T]]:
        """Every batch whose delay has passed, oldest first, without waiting."""
        out = []
        now = self.clock()
        while self._queue and self._queue[0].due <= now:
            h = self._queue.popleft()
            self._rows -= h.rows
            out.append((h.key, h.item))
        if out:
            self._set_rows(self._rows)
            batches_total.labels("released").inc(len(out))
            self._notify()
        return out

    def drain(self) -> list[tuple[Hashable, T]]:
        """Everything held, oldest first, due or not."""
        out = [(h.key, h.item) for h in self._queue]
        self._queue.clear()
        self._set_rows(0)
        if out:
            batches_total.labels("released").inc(len(out))
            self._notify()
        return out

    def discard(self, key: Hashable) -> int:
        """Drop the held batches of one shard (its lease was lost). Returns how many."""
        keep = deque(h for h in self._queue if h.key != key)
        n = len(self._queue) - len(keep)
        if n:
            self._queue = keep
            self._set_rows(sum(h.rows for h in keep))
            batches_total.labels("discarded").inc(n)
            self._notify()
        return n

    def _notify(self) -> None:
        cond = self._changed
        if cond is None:
            return

        async def wake() -> None:
            async with cond:
                cond.notify_all()

        with contextlib.suppress(RuntimeError):  # no loop running: nobody can be waiting
            task = asyncio.get_running_loop().create_task(wake())
            self._wakers.add(task)
            task.add_done_callback(self._wakers.discard)
