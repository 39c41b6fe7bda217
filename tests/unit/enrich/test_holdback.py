"""Holdback: batches come out in order, only once due (processing time, injected clock);
discard drops one shard's batches; max_rows applies backpressure; stop drops, drain hands out."""

from __future__ import annotations

import asyncio

import pytest

from dredge.enrich.holdback import Holdback, HoldbackConfig
from dredge.errors import ConfigError
from dredge.testing import FakeClock


def test_config() -> None:
    HoldbackConfig().validate()
    for kw, field in (({"delay_s": -1}, "delay_s"), ({"max_rows": 0}, "max_rows")):
        with pytest.raises(ConfigError) as err:
            HoldbackConfig(**kw).validate()  # type: ignore[arg-type]
        assert err.value.field == field


def test_release_in_order_once_due_and_discard() -> None:
    async def main() -> None:
        clock = FakeClock(100.0)
        async with Holdback[str](HoldbackConfig(delay_s=60), clock=clock) as hb:
            await hb.put("shard-1", "a", rows=10)
            clock.now += 30
            await hb.put("shard-2", "b", rows=5)
            await hb.put("shard-1", "c", rows=1)
            assert hb.ready() == [] and hb.held_rows == 16 and hb.oldest_age() == 30
            clock.now += 30  # a is due
            assert hb.ready() == [("shard-1", "a")]
            assert hb.discard("shard-1") == 1  # c
            clock.now += 30
            assert hb.ready() == [("shard-2", "b")]
            assert hb.held_batches == 0 and hb.held_rows == 0

    asyncio.run(main())


def test_get_waits_for_the_delay() -> None:
    async def main() -> None:
        clock = FakeClock(100.0)
        async with Holdback[int](HoldbackConfig(delay_s=5), clock=clock) as hb:
            await hb.put("s", 1, rows=1)
            getter = asyncio.create_task(hb.get())
            await asyncio.sleep(0.05)
            assert not getter.done()  # not due on the injected clock
            clock.now += 5
            await hb.put("s", 2, rows=1)  # any change wakes the getter to look again
            assert await asyncio.wait_for(getter, 10) == ("s", 1)

    asyncio.run(main())


def test_backpressure_and_stop() -> None:
    async def main() -> None:
        clock = FakeClock(100.0)
        hb = Holdback[int](HoldbackConfig(delay_s=0, max_rows=10), clock=clock)
        await hb.start()
        await hb.put("s", 1, rows=8)
        blocked = asyncio.create_task(hb.put("s", 2, rows=5))
        await asyncio.sleep(0.05)
        assert not blocked.done() and hb.held_batches == 1
        assert await hb.get() == ("s", 1)
        await asyncio.wait_for(blocked, 10)
        assert hb.drain() == [("s", 2)]
        await asyncio.wait_for(hb.put("s", 3, rows=100), 10)  # too big, but nothing else held
        await hb.stop()
        await hb.stop()
        assert hb.held_batches == 0  # dropped: never checkpointed, read again next run
        with pytest.raises(RuntimeError):
            await hb.get()

    asyncio.run(main())
