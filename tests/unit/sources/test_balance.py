"""The lease taker's pure decisions (KCL's DynamoDBLeaseTaker) and shard lineage."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.sources.kinesis.balance import (
    SHARD_END,
    CounterWatch,
    LeaseState,
    finished_leases,
    lease_target,
    lineage_order,
    parents_done,
    plan_take,
    superseded,
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


# -- finished leases -------------------------------------------------------------------------

# p0 split into c2, c3; c3 and p1 merged into m4 (as in the lease table tests)
PARENTS = {"p0": (), "p1": (), "c2": ("p0",), "c3": ("p0",), "m4": ("c3", "p1")}
CHILDREN = {"p0": {"c2", "c3"}, "p1": {"m4"}, "c3": {"m4"}}


def test_a_finished_lease_goes_once_every_child_has_started() -> None:
    listed = set(PARENTS)
    cps = {"p0": SHARD_END, "p1": "17", "c2": "TRIM_HORIZON", "c3": "TRIM_HORIZON", "m4": "TRIM_HORIZON"}
    assert finished_leases(cps, CHILDREN, listed) == []
    cps["c2"] = "42"
    assert finished_leases(cps, CHILDREN, listed) == []  # c3 has not started
    cps["c3"] = SHARD_END
    assert finished_leases(cps, CHILDREN, listed) == ["p0"]  # c3 waits for m4
    cps["p1"] = SHARD_END
    cps["m4"] = "99"
    assert finished_leases(cps, CHILDREN, listed) == ["c3", "p0", "p1"]
    # a child without a lease keeps the parent (its lease may not be written yet)
    del cps["c2"]
    assert "p0" not in finished_leases(cps, CHILDREN, listed)
    # trimmed from the stream: goes whatever its children
    assert finished_leases({"p0": SHARD_END, "c2": "TRIM_HORIZON"}, CHILDREN, {"c2"}) == ["p0"]
    # open, or not started, leases never go
    assert finished_leases({"x": "5", "y": "LATEST"}, {}, set()) == []


def test_superseded_are_the_ancestors_of_started_shards() -> None:
    assert superseded(PARENTS, {}) == set()
    assert superseded(PARENTS, {"c2": "TRIM_HORIZON", "m4": "AT_TIMESTAMP"}) == set()
    assert superseded(PARENTS, {"c2": "1"}) == {"p0"}
    assert superseded(PARENTS, {"m4": SHARD_END}) == {"c3", "p0", "p1"}


def test_lineage_order_puts_parents_first() -> None:
    order = lineage_order({"m4": ("c3", "p1"), "c3": ("p0",), "c2": ("p0",), "p1": (), "p0": (),
                           "x9": ("gone",)})
    pos = {s: i for i, s in enumerate(order)}
    assert sorted(order) == ["c2", "c3", "m4", "p0", "p1", "x9"]
    for s, ps in PARENTS.items():
        assert all(pos[p] < pos[s] for p in ps)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cleanup_never_lets_a_shard_be_leased_twice(data: st.DataObject) -> None:
    """Random lineages: after deleting whatever finished_leases allows, a shard lacking a
    lease is superseded exactly when it had been finished (so no new lease reads it again),
    and every child still finds its parents done."""
    n = data.draw(st.integers(1, 12))
    parents: dict[str, tuple[str, ...]] = {}
    for i in range(n):
        earlier = [f"s{j}" for j in range(i)]
        k = data.draw(st.integers(0, min(2, len(earlier))))
        parents[f"s{i}"] = tuple(data.draw(st.permutations(earlier))[:k]) if k else ()
    children: dict[str, set[str]] = {}
    for s, ps in parents.items():
        for p in ps:
            children.setdefault(p, set()).add(s)
    # a consistent state: a shard is finished, started or not started; a shard may have
    # started only when all its parents finished
    cps: dict[str, str] = {}
    for s in parents:
        ready = all(cps.get(p) == SHARD_END for p in parents[s])
        state = data.draw(st.sampled_from(["TRIM_HORIZON", "7", SHARD_END] if ready else ["TRIM_HORIZON"]))
        cps[s] = state
    finished = {s for s, c in cps.items() if c == SHARD_END}
    for s in finished_leases(cps, children, set(parents)):
        del cps[s]
    done = superseded(parents, cps)
    for s in parents:
        if s not in cps:
            assert s in done and s in finished, (s, parents, cps)
        if s in cps:
            assert parents_done(parents[s], cps) == all(
                p in finished for p in parents[s]), (s, parents, cps)
