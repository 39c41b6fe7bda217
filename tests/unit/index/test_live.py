"""The live manager: events in any order land at their own time, compaction keeps every
lookup at or after the cutoff, state survives a restart, snapshots are swapped not mutated;
hypothesis properties against a brute-force scan of the events."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.errors import ConfigError, OwnerIndexError
from dredge.flowlog.parser import parse_addresses
from dredge.index.history import EventLog, Events
from dredge.index.live import IndexManager, address_history
from dredge.index.providers.config import IndexConfig
from dredge.index.snapshot import IndexSnapshot
from dredge.testing import FakeClock


def owner(app: str) -> tuple[str | None, ...]:
    return (app, f"{app}-prod", None, None, None, None, None, "ecs-task")


def apps(snap: IndexSnapshot, ips: list[str], times: list[int]) -> list[str]:
    ids, _ = snap.lookup(parse_addresses(pa.array(ips, pa.string())), np.array(times, np.int64))
    return [snap.owners.column("app")[int(i)].as_py() for i in ids]


def manager(clock: FakeClock, **cfg: object) -> IndexManager:
    return IndexManager(IndexConfig(**cfg), clock=clock)  # type: ignore[arg-type]


def test_config_defaults_validate_and_bad_values_name_the_field(tmp_path: Path) -> None:
    IndexConfig().validate()
    for field, value in (("retention_s", 0), ("debounce_s", -1), ("save_interval_s", 0),
                         ("state_path", str(tmp_path))):
        with pytest.raises(ConfigError) as err:
            IndexConfig(**{field: value}).validate()  # type: ignore[arg-type]
        assert err.value.field == field


def test_events_out_of_order_land_at_their_own_time() -> None:
    clock = FakeClock(10_000)
    m = manager(clock)
    s = m.sink("events/file", "events")
    # arrives: B at 500, release at 900, A at 100 (late), C at 500 (same second as B, later)
    s.submit(["10.0.0.1"], [500], [owner("b")])
    s.submit(["10.0.0.1"], [900], [None])
    s.submit(["10.0.0.1", "10.0.0.1"], [100, 500], [owner("a"), owner("c")])
    snap = m.rebuild_now()
    assert apps(snap, ["10.0.0.1"] * 6, [99, 100, 499, 500, 899, 900]) == \
        ["unknown", "a", "a", "c", "c", "unknown"]


def test_release_and_assignment_in_the_same_second_keep_the_new_owner() -> None:
    m = manager(FakeClock(10_000))
    s = m.sink("x", "events")
    s.submit(["10.0.0.2"], [200], [owner("new")])  # assignment arrives first
    s.submit(["10.0.0.2", "10.0.0.2"], [100, 200], [owner("old"), None])
    assert apps(m.rebuild_now(), ["10.0.0.2"] * 3, [150, 200, 5000]) == ["old", "new", "new"]


def test_too_late_and_invalid_events_are_counted_not_stored() -> None:
    clock = FakeClock(100_000)
    m = manager(clock, retention_s=1000)
    s = m.sink("x", "events")
    r = s.submit(["10.0.0.1", "nope", "10.0.0.2"], [98_000, 99_500, 99_500],
                 [owner("a"), owner("b"), owner("c")])
    assert (r.accepted, r.too_late, r.invalid) == (1, 1, 1)
    m.rebuild_now()
    st_ = m.status()["x"]
    assert (st_.accepted, st_.too_late, st_.invalid) == (1, 1, 1)


def test_compaction_drops_expired_history_and_keeps_lookups_after_the_cutoff() -> None:
    clock = FakeClock(1_000)
    m = manager(clock, retention_s=500)
    s = m.sink("x", "events")
    s.submit(["10.0.0.1"] * 4 + ["10.0.0.2"] * 2,
             [600, 700, 800, 900, 650, 660],
             [owner("a"), owner("b"), None, owner("c"), owner("z"), None])
    s.submit(["10.0.0.1"], [900], [owner("c")])  # an exact duplicate
    m.rebuild_now()
    assert len(m.history) == 6  # duplicate gone
    clock.now = 1_360  # cutoff 860: a [600,700) b [700,800) release 800, and all of .2, expire
    snap = m.rebuild_now()
    assert len(m.history) == 1
    assert apps(snap, ["10.0.0.1", "10.0.0.1", "10.0.0.2"], [860, 5000, 880]) == \
        ["unknown", "c", "unknown"]
    # a late event older than the cutoff is refused; one after it sorts in
    assert s.submit(["10.0.0.1"], [850], [owner("late")]).too_late == 1
    s.submit(["10.0.0.1"], [870], [owner("late")])
    assert apps(m.rebuild_now(), ["10.0.0.1"] * 3, [869, 870, 900]) == ["unknown", "late", "c"]


def test_snapshots_are_swapped_not_mutated() -> None:
    m = manager(FakeClock(10_000))
    s = m.sink("x", "events")
    s.submit(["10.0.0.1"], [100], [owner("a")])
    old = m.rebuild_now()
    s.submit(["10.0.0.1"], [200], [owner("b")])
    new = m.rebuild_now()
    assert old is not new and m.current() is new
    assert apps(old, ["10.0.0.1"], [300]) == ["a"]
    assert apps(new, ["10.0.0.1"], [300]) == ["b"]


def test_sources_overlap_latest_start_wins_and_history_lists_all() -> None:
    m = manager(FakeClock(10_000))
    m.sink("ec2/1/us-east-1", "ec2").submit(["10.0.0.9"], [100], [owner("vm")])
    m.sink("events/k", "events").submit(["10.0.0.9", "10.0.0.9"], [200, 300],
                                         [owner("task"), None])
    snap = m.rebuild_now()
    assert apps(snap, ["10.0.0.9"] * 3, [150, 250, 350]) == ["vm", "task", "vm"]
    hist = address_history(m.history, m.owner, "10.0.0.9")
    assert [(h["source"], h["start"], h["end"], h["app"]) for h in hist] == [
        ("ec2/1/us-east-1", 100, None, "vm"), ("events/k", 200, 300, "task")]


def test_networks_and_events_together() -> None:
    m = manager(FakeClock(10_000))
    m.sink("cidr/networks.csv", "cidr").set_networks(
        pa.table({"cidr": ["10.0.0.0/8", "10.1.0.0/16"], "app": ["corp", "lab"]}))
    m.sink("x", "events").submit(["10.1.0.5"], [100], [owner("a")])
    assert apps(m.rebuild_now(), ["10.1.0.5", "10.1.0.5", "10.2.0.1"], [50, 150, 150]) == \
        ["lab", "a", "corp"]


def test_state_round_trip_keeps_history_networks_cursors(tmp_path: Path) -> None:
    path = tmp_path / "state" / "index.arrow"
    clock = FakeClock(10_000)

    async def first() -> None:
        m = manager(clock, state_path=str(path))
        await m.start()
        s = m.sink("events/file", "events")
        s.submit(["10.0.0.1", "2600:1f18::5", "10.0.0.1"], [100, 150, 400],
                 [owner("a"), owner("v6"), None], cursor={"offset": 123})
        m.sink("cidr/n.csv", "cidr").set_networks(pa.table({"cidr": ["10.9.0.0/16"],
                                                            "app": ["corp"]}))
        await m.stop()
        await m.stop()  # idempotent

    async def second() -> IndexManager:
        m = manager(clock, state_path=str(path))
        await m.start()
        return m

    asyncio.run(first())
    assert path.exists() and not path.with_name("index.arrow.tmp").exists()
    m2 = asyncio.run(second())
    snap = m2.current()
    assert apps(snap, ["10.0.0.1", "10.0.0.1", "2600:1f18::5", "10.9.1.1"], [200, 400, 9999, 0]) == \
        ["a", "unknown", "v6", "corp"]
    assert m2.sink("events/file", "events").cursor() == {"offset": 123}
    assert m2.status()["events/file"].accepted == 3
    snap2 = m2.current()
    ids, _ = snap2.lookup(parse_addresses(pa.array(["2600:1f18::5"])), np.array([200]))
    assert snap2.owners.slice(int(ids[0]), 1).to_pylist()[0]["cluster"] == "v6-prod"
    # owners interned before the load keep their meaning
    s = m2.sink("events/file", "events")
    assert s.assigned() == {"2600:1f18::5": owner("v6")}


def test_a_crashed_task_makes_current_raise() -> None:
    async def main() -> None:
        m = manager(FakeClock(10_000))
        await m.start()

        async def boom() -> None:
            raise RuntimeError("provider bug")

        task = m._tasks.spawn(boom(), "boom")
        with pytest.raises(RuntimeError):
            await task
        with pytest.raises(OwnerIndexError):
            m.current()
        await m.stop()

    asyncio.run(main())


def test_live_rebuild_is_debounced_and_off_the_loop() -> None:
    async def main() -> None:
        m = manager(FakeClock(10_000), debounce_s=0.0)
        await m.start()
        first = m.current()
        m.sink("x", "events").submit(["10.0.0.1"], [100], [owner("a")])
        for _ in range(500):  # the rebuild runs in a thread; wait for the swap
            if m.current() is not first:
                break
            await asyncio.sleep(0.01)
        assert apps(m.current(), ["10.0.0.1"], [200]) == ["a"]
        await m.stop()

    asyncio.run(main())


# -- properties: the manager equals a brute-force scan of the events ---------------------

_ips = ["10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::1", "fd00::2"]
_apps = ["a", "b", "c", None]  # None: a release


@st.composite
def _event_batches(draw: st.DrawFn) -> list[list[tuple[str, int, str | None, int]]]:
    """Batches of (ip, time, app or None, source) in arrival order."""
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 12))
        batches.append([(draw(st.sampled_from(_ips)), draw(st.integers(0, 30)),
                         draw(st.sampled_from(_apps)), draw(st.integers(0, 1)))
                        for _ in range(n)])
    return batches


def _private(ip: str) -> bool:
    a = ipaddress.ip_address(ip)
    nets = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
    return any(a in ipaddress.ip_network(n) for n in nets if ipaddress.ip_network(n).version == a.version)


def _brute(events: list[tuple[str, int, str | None, int, int]], ip: str, t: int) -> str:
    """Per source: the last event at or before t (time, release first, arrival) decides;
    across sources the interval with the latest start wins (ties: later source... by order
    of first appearance, then arrival)."""
    best: tuple[int, int, int, str] | None = None
    for src in {e[3] for e in events}:
        mine = sorted((e for e in events if e[3] == src and ipaddress.ip_address(e[0]) == ipaddress.ip_address(ip)),
                      key=lambda e: (e[1], e[2] is not None, e[4]))
        last = None
        for k, e in enumerate(mine):
            nxt = mine[k + 1][1] if k + 1 < len(mine) else None
            if e[1] <= t:
                last = (e, nxt)
        if last is None or last[0][2] is None:
            continue
        e, nxt = last
        if nxt is not None and nxt <= t:
            continue
        cand = (e[1], src, e[4], e[2])  # type: ignore[assignment]
        if best is None or (cand[0], cand[1]) > (best[0], best[1]):
            best = cand  # type: ignore[assignment]
    if best is not None:
        return best[3]
    return "unknown" if _private(ip) else "internet"


_grid = [(ip, t) for ip in _ips for t in range(-2, 34)]  # every address at every second


@settings(max_examples=200, deadline=None)
@given(_event_batches(), st.integers(0, 30))
def test_property_manager_equals_brute_force_after_updates_and_compaction(
        batches: list[list[tuple[str, int, str | None, int]]], cutoff: int) -> None:
    queries = _grid
    clock = FakeClock(0)
    m = manager(clock, retention_s=1000)
    sinks = [m.sink("s0", "events"), m.sink("s1", "events")]
    seen: list[tuple[str, int, str | None, int, int]] = []
    arrival = 0
    for batch in batches:
        for src in (0, 1):
            rows = [r for r in batch if r[3] == src]
            if rows:
                sinks[src].submit([r[0] for r in rows], [r[1] for r in rows],
                                  [None if r[2] is None else owner(r[2]) for r in rows])
                for r in rows:
                    seen.append((*r, arrival))
                    arrival += 1
        m.rebuild_now()
    # source order as the manager saw them: by first appearance
    order = sorted({e[3] for e in seen}, key=lambda s: min(e[4] for e in seen if e[3] == s))
    rank = {s: i for i, s in enumerate(order)}
    ranked = [(e[0], e[1], e[2], rank[e[3]], e[4]) for e in seen]
    got = apps(m.current(), [q[0] for q in queries], [q[1] for q in queries])
    assert got == [_brute(ranked, ip, t) for ip, t in queries]
    # compaction at `cutoff` changes nothing at or after it
    clock.now = cutoff + 1000
    snap = m.rebuild_now()
    later = [q for q in queries if q[1] >= cutoff]
    got = apps(snap, [q[0] for q in later], [q[1] for q in later])
    assert got == [_brute(ranked, ip, t) for ip, t in later]


def test_event_log_merge_is_order_independent_within_a_second() -> None:
    ev = Events.of(["10.0.0.1", "10.0.0.1"], [5, 5], [-1, 2])
    a = EventLog.empty().merge([("s", ev)])
    b = EventLog.empty().merge([("s", ev.take(np.array([1])))]).merge([("s", ev.take(np.array([0])))])
    for log in (a, b):
        iv = log.intervals()
        assert iv.start.tolist() == [5] and iv.owner.tolist() == [2]
