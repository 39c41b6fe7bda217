"""Holdings: what a worker holds by its own clock (pure state, no I/O)."""

from __future__ import annotations

import asyncio

from dredge.sources.kinesis.leases.holdings import Holdings
from dredge.sources.kinesis.leases.item import key
from dredge.sources.kinesis.metrics import lease_events_total
from dredge.testing import FakeClock


def test_a_hold_expires_after_the_failover_time_by_our_clock() -> None:
    clock = FakeClock(100.0)
    h = Holdings("w", failover_time_s=10.0, clock=clock)
    h.add("a", counter=4, sent_at=100.0)
    h.add("b", counter=1, sent_at=95.0)
    assert h.held() == {"a", "b"}
    clock.now = 106.0
    assert h.held() == {"a"}  # b last renewed 11 s ago
    assert sorted(h.ids()) == ["a", "b"]  # still remembered until dropped
    before = lease_events_total.labels(event="expired").value
    h.drop_expired()
    assert h.ids() == ["a"]
    assert lease_events_total.labels(event="expired").value == before + 1


def test_write_values_and_renewal_move_the_counter() -> None:
    clock = FakeClock(100.0)
    h = Holdings("worker-a", 10.0, clock)
    h.add("s", counter=7, sent_at=100.0)

    async def write() -> tuple[dict[str, object], float | None]:
        async with h.locked("s") as held:
            assert held is not None
            sent_at = h.begin_write("s", held)
            values = h.owned_values(held)
            h.renewed(held, 105.0)
            return values, sent_at

    values, sent_at = asyncio.run(write())
    assert sent_at == 100.0
    assert values == {":me": {"S": "worker-a"}, ":held": {"N": "7"}, ":next": {"N": "8"}}
    clock.now = 114.0  # 9 s after the renewal at 105: still held
    assert h.held() == {"s"}


def test_an_expired_hold_is_never_written_again() -> None:
    clock = FakeClock(100.0)
    h = Holdings("w", 10.0, clock)
    h.add("s", 1, 100.0)
    clock.now = 111.0

    async def write() -> float | None:
        async with h.locked("s") as held:
            assert held is not None
            return h.begin_write("s", held)

    assert asyncio.run(write()) is None
    assert h.ids() == []


def test_locked_yields_none_for_a_hold_replaced_or_absent() -> None:
    h = Holdings("w", 10.0, FakeClock(100.0))

    async def main() -> list[bool]:
        seen = []
        async with h.locked("missing") as held:
            seen.append(held is None)
        h.add("s", 1, 100.0)
        first = h._held["s"]
        async with first.lock:
            waiter = asyncio.create_task(_enter(h, "s"))
            await asyncio.sleep(0)
            h.add("s", 5, 100.0)  # a take() replaced the hold while the waiter queued
        seen.append(await waiter)
        return seen

    assert asyncio.run(main()) == [True, True]


async def _enter(h: Holdings, shard_id: str) -> bool:
    async with h.locked(shard_id) as held:
        return held is None


def test_drop_touches_only_that_very_hold() -> None:
    h = Holdings("w", 10.0, FakeClock(100.0))
    h.add("s", 1, 100.0)
    old = h._held["s"]
    h.add("s", 2, 100.0)
    h.drop("s", old, "lost")
    assert h.ids() == ["s"]
    h.forget("s")
    h.forget("s")  # idempotent
    assert h.ids() == [] and key("s") == {"leaseKey": {"S": "s"}}
