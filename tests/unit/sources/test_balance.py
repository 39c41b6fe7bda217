"""The lease taker's pure decisions (KCL's DynamoDBLeaseTaker) and shard lineage."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.sources.kinesis.balance import (
    CounterWatch,
    LeaseState,
    lease_target,
    parents_done,
    plan_take,
)


def view(**owners: int) -> list[LeaseState]:
    """``view(a=3, b=1, _=2)``: leases owned per worker; ``_`` are unowned."""
    leases = []
    for owner, n in owners.items():
        for i in range(n):
            leases.append(LeaseState(f"{owner}-{i}", None if owner == "_" else owner, 1))
    return leases


def held_by(leases: list[LeaseState], me: str) -> set[str]:
    return {lease.shard_id for lease in leases if lease.owner == me}


@pytest.mark.parametrize(
    ("total", "workers", "cap", "expected"),
    [(0, 3, 0, 0), (12, 3, 0, 4), (10, 3, 0, 4), (2, 5, 0, 1), (12, 1, 0, 12), (12, 1, 5, 5)],
)
def test_target(total: int, workers: int, cap: int, expected: int) -> None:
    assert lease_target(total, workers, cap) == expected


def test_counter_watch_judges_expiry_by_own_observations() -> None:
    w = CounterWatch()
    w.observe([LeaseState("free", None, 0), LeaseState("owned", "b", 5)], now=100.0)
    assert w.expired("free", 100.0, 10.0)  # never renewed
    assert not w.expired("owned", 100.0, 10.0)  # benefit of the doubt on first sight
    assert not w.expired("owned", 110.0, 10.0)
    assert w.expired("owned", 110.5, 10.0)
    w.observe([LeaseState("owned", "b", 6)], now=109.0)  # renewed: clock restarts
    assert not w.expired("owned", 118.0, 10.0)
    w.observe([LeaseState("owned", "b", 6)], now=115.0)  # unchanged: keeps the earlier time
    assert w.expired("owned", 119.5, 10.0)
    assert w.expired("free", 119.5, 10.0)  # forgotten, absent from the last scan
    assert w.expired_set(119.5, 10.0) == {"owned"}


def test_alone_takes_everything() -> None:
    plan = plan_take(view(_=5), "a", held=set(), expired=set())
    assert sorted(plan.take) == [f"_-{i}" for i in range(5)]
    assert plan.steal == ()
    assert plan.target == 5


def test_takes_available_up_to_target_and_does_not_steal_meanwhile() -> None:
    leases = view(a=2, b=6, _=1)  # 9 leases, 2 live workers -> target 5
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=set())
    assert plan.take == ("_-0",)
    assert plan.steal == ()


def test_expired_leases_are_available_and_their_owner_not_counted() -> None:
    leases = view(a=4, b=4, c=4)
    dead = held_by(leases, "c")
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=dead, rng=random.Random(1))
    assert plan.workers == 2
    assert plan.target == 6
    assert len(plan.take) == 2
    assert set(plan.take) <= dead


def test_steals_one_from_most_loaded_above_target() -> None:
    leases = view(a=1, b=8, c=3)  # target 4, a needs 3, b has 4 too many
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=set())
    assert plan.take == ()
    assert len(plan.steal) == 1
    assert plan.steal[0].startswith("b-")


def test_steal_count_bounded_by_need_excess_and_max() -> None:
    leases = view(a=0, b=10, c=2)  # target 4: a needs 4, b has 6 extra
    plan = plan_take(leases, "a", held=set(), expired=set(), max_steal=3)
    assert len(plan.steal) == 3
    leases = view(a=3, b=6, c=3)  # target 4: a needs 1
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=set(), max_steal=3)
    assert len(plan.steal) == 1


def test_steals_one_from_a_worker_at_target_only_when_two_short() -> None:
    leases = view(a=2, b=4, c=4)  # 10 leases, target 4
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=set())
    assert len(plan.steal) == 1
    leases = view(a=3, b=4, c=3)  # a needs one, b is at target: balanced enough
    assert plan_take(leases, "a", held=held_by(leases, "a"), expired=set()).steal == ()


def test_at_target_takes_nothing() -> None:
    leases = view(a=4, b=4, c=4, _=0)
    plan = plan_take(leases, "a", held=held_by(leases, "a"), expired=set())
    assert plan.shard_ids == ()


def test_max_leases_caps_the_target() -> None:
    plan = plan_take(view(_=10), "a", held=set(), expired=set(), max_leases=3)
    assert plan.target == 3
    assert len(plan.take) == 3


def test_own_rows_from_an_earlier_run_are_adopted_first() -> None:
    leases = view(a=2, _=8)  # "a" owns two rows in the table but holds nothing in memory
    plan = plan_take(leases, "a", held=set(), expired=set(), rng=random.Random(3))
    assert plan.target == 10
    plan = plan_take(leases, "a", held=set(), expired=set(), max_leases=2)
    assert set(plan.take) == {"a-0", "a-1"}


def test_parents_done() -> None:
    assert parents_done([], {})
    assert not parents_done(["p"], {"p": "TRIM_HORIZON"})
    assert not parents_done(
        ["p"], {"p": "49590338271490256608559692538361571095921575989136588898"}
    )
    assert parents_done(["p"], {"p": "SHARD_END"})
    assert parents_done(["p", "gone"], {"p": "SHARD_END"})  # a deleted parent lease is done
    assert not parents_done(["p", "q"], {"p": "SHARD_END", "q": "LATEST"})


# -- many workers, many rounds -------------------------------------------------------------


class Table:
    """A lease table in memory with DynamoDB's conditional-on-counter semantics."""

    def __init__(self, owners: list[str | None]) -> None:
        self.rows = {f"s{i}": LeaseState(f"s{i}", o, 0) for i, o in enumerate(owners)}

    def snapshot(self) -> list[LeaseState]:
        return list(self.rows.values())

    def renew(self, shard_id: str, me: str) -> bool:
        row = self.rows[shard_id]
        if row.owner != me:
            return False
        self.rows[shard_id] = LeaseState(shard_id, me, row.counter + 1)
        return True

    def take(self, seen: LeaseState, me: str) -> bool:
        if self.rows[seen.shard_id].counter != seen.counter:
            return False
        self.rows[seen.shard_id] = LeaseState(seen.shard_id, me, seen.counter + 1)
        return True

    def loads(self, workers: list[str]) -> list[int]:
        return [sum(r.owner == w for r in self.rows.values()) for w in workers]


def run_round(
    table: Table,
    workers: list[str],
    held: dict[str, set[str]],
    rng: random.Random,
    max_steal: int,
    simultaneous: bool,
) -> None:
    """Every worker renews then takes; ``simultaneous`` plans from one shared stale scan."""
    order = rng.sample(workers, len(workers))
    for w in order:
        held[w] = {s for s in held[w] if table.renew(s, w)}
    shared = table.snapshot()
    for w in order:
        scan = shared if simultaneous else table.snapshot()
        plan = plan_take(scan, w, held=held[w], expired=set(), max_steal=max_steal, rng=rng)
        by_id = {lease.shard_id: lease for lease in scan}
        assert len(plan.steal) <= max_steal
        assert len({by_id[s].owner for s in plan.steal}) <= 1  # one victim per round
        assert all(by_id[s].owner in (None, w) for s in plan.take)
        assert not set(plan.shard_ids) & held[w]
        for s in plan.shard_ids:
            if table.take(by_id[s], w):
                held[w].add(s)


def balanced(loads: list[int], total: int) -> bool:
    n = len(loads)
    return sum(loads) == total and all(total // n <= x <= -(-total // n) for x in loads)


@settings(max_examples=150, deadline=None)
@given(
    n_workers=st.integers(1, 6),
    data=st.data(),
    max_steal=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_rounds_converge_to_floor_or_ceil_and_stay(
    n_workers: int, data: st.DataObject, max_steal: int, seed: int
) -> None:
    workers = [f"w{i}" for i in range(n_workers)]
    owners = data.draw(st.lists(st.sampled_from([None, *workers]), max_size=40), label="owners")
    table = Table(owners)
    held = {w: {s for s, r in table.rows.items() if r.owner == w} for w in workers}
    rng = random.Random(seed)
    total = len(owners)
    for _ in range(2 * total + 2 * n_workers + 5):
        run_round(table, workers, held, rng, max_steal, simultaneous=False)
    loads = table.loads(workers)
    assert balanced(loads, total), loads
    before = dict(table.rows)
    for _ in range(n_workers + 2):
        run_round(table, workers, held, rng, max_steal, simultaneous=False)
    assert {s: r.owner for s, r in table.rows.items()} == {s: r.owner for s, r in before.items()}


@settings(max_examples=100, deadline=None)
@given(
    n_workers=st.integers(2, 6),
    total=st.integers(0, 40),
    max_steal=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_simultaneous_rounds_from_cold_start_converge(
    n_workers: int, total: int, max_steal: int, seed: int
) -> None:
    """All workers plan from the same scan; conditional writes settle the races."""
    workers = [f"w{i}" for i in range(n_workers)]
    table = Table([None] * total)
    held: dict[str, set[str]] = {w: set() for w in workers}
    rng = random.Random(seed)
    for _ in range(4 * total + 4 * n_workers + 10):
        run_round(table, workers, held, rng, max_steal, simultaneous=True)
        if balanced(table.loads(workers), total):
            break
    assert balanced(table.loads(workers), total), table.loads(workers)
