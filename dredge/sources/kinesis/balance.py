"""Pure decisions of the lease taker and of shard lineage; no I/O, no clocks read here.

Follows the Kinesis Client Library's ``DynamoDBLeaseTaker`` (KCL 2.x):

- A lease is *expired* when this worker has watched its ``leaseCounter`` stay the same for
  longer than the failover time, measured on this worker's own clock (``CounterWatch``).
  Wall clocks of different machines are never compared.
- A lease is *available* when it has no owner or is expired. A lease still owned by this
  very worker but not held in memory (an earlier run of the same worker id) is adopted.
- Each worker aims at ``target = ceil(leases / live workers)`` (capped by
  ``max_leases``); live workers are the distinct owners of leases that are not available,
  plus this worker.
- Below target, take available leases. Only when none are available, steal from the most
  loaded worker: ``min(needed, its excess)`` leases, or one lease when it sits exactly at
  target and this worker needs more than one; never more than ``max_steal`` per round.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from dredge.sources.kinesis.shards import SHARD_END


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What the taker needs to know about one lease row."""

    shard_id: str
    owner: str | None
    counter: int


@dataclass(frozen=True, slots=True)
class TakePlan:
    """One round's decision: leases to take (available) and to steal (owned by others)."""

    take: tuple[str, ...] = ()
    steal: tuple[str, ...] = ()
    target: int = 0
    workers: int = 1

    @property
    def shard_ids(self) -> tuple[str, ...]:
        return self.take + self.steal


class CounterWatch:
    """When each lease's counter last changed, as observed by this worker (KCL's
    ``lastCounterIncrementNanos``)."""

    def __init__(self) -> None:
        # shard_id -> (counter last seen, time it was first seen with that counter; None = never renewed)
        self._seen: dict[str, tuple[int, float | None]] = {}

    def observe(self, leases: Iterable[LeaseState], now: float) -> None:
        """Record one full scan taken at ``now``; leases absent from it are forgotten."""
        fresh: dict[str, tuple[int, float | None]] = {}
        for lease in leases:
            old = self._seen.get(lease.shard_id)
            changed_at: float | None
            if old is None:
                # First sight: an owned lease gets the benefit of the doubt for one failover time.
                changed_at = None if lease.owner is None else now
            elif old[0] == lease.counter:
                changed_at = old[1]
            else:
                changed_at = now
            fresh[lease.shard_id] = (lease.counter, changed_at)
        self._seen = fresh

    def expired(self, shard_id: str, now: float, failover_s: float) -> bool:
        seen = self._seen.get(shard_id)
        if seen is None or seen[1] is None:
            return True
        return now - seen[1] > failover_s

    def expired_set(self, now: float, failover_s: float) -> set[str]:
        return {s for s in self._seen if self.expired(s, now, failover_s)}


def lease_target(total: int, workers: int, max_leases: int = 0) -> int:
    """Leases one worker should hold: ceil(total / workers), at least 1, capped by max_leases (0 = no cap)."""
    if total == 0:
        return 0
    target = 1 if workers >= total else math.ceil(total / workers)
    return min(target, max_leases) if max_leases > 0 else target


def plan_take(
    view: Sequence[LeaseState],
    me: str,
    *,
    held: Set[str],
    expired: Set[str],
    max_leases: int = 0,
    max_steal: int = 1,
    rng: random.Random | None = None,
) -> TakePlan:
    """Decide which leases ``me`` takes this round, given a full scan ``view``.

    ``held`` are the leases this worker renews; ``expired`` the ones its ``CounterWatch``
    judged expired. Shuffling (``rng``) keeps workers from contending for the same rows.
    """
    rng = rng or random.Random()
    if not view:
        return TakePlan()
    available: list[LeaseState] = []
    counts: dict[str, int] = {me: 0}
    for lease in view:
        if lease.shard_id not in held and (
            lease.owner is None or lease.owner == me or lease.shard_id in expired
        ):
            available.append(lease)
        elif lease.owner is not None:
            counts[lease.owner] = counts.get(lease.owner, 0) + 1
    target = lease_target(len(view), len(counts), max_leases)
    needed = target - counts[me]
    if needed <= 0:
        return TakePlan(target=target, workers=len(counts))
    if available:
        rng.shuffle(available)
        # Our own rows from an earlier run first: nobody else is processing them.
        available.sort(key=lambda lease: lease.owner != me)
        take = tuple(lease.shard_id for lease in available[:needed])
        return TakePlan(take=take, target=target, workers=len(counts))
    steal = _choose_steal(view, me, counts, needed, target, max_steal, rng)
    return TakePlan(steal=steal, target=target, workers=len(counts))


def _choose_steal(
    view: Sequence[LeaseState],
    me: str,
    counts: Mapping[str, int],
    needed: int,
    target: int,
    max_steal: int,
    rng: random.Random,
) -> tuple[str, ...]:
    others = [(n, w) for w, n in counts.items() if w != me]
    if not others:
        return ()
    top = max(n for n, _ in others)
    victim = rng.choice(sorted(w for n, w in others if n == top))
    if top < target:
        return ()
    n_steal = min(needed, top - target)
    if n_steal == 0 and needed > 1:
        # KCL: the most loaded sits at target but we are two or more short (e.g. 4/4/2 of 10).
        n_steal = 1
    n_steal = min(n_steal, max_steal)
    if n_steal <= 0:
        return ()
    candidates = sorted(lease.shard_id for lease in view if lease.owner == victim)
    return tuple(rng.sample(candidates, min(n_steal, len(candidates))))


def parents_done(parent_shard_ids: Iterable[str], checkpoints: Mapping[str, str]) -> bool:
    """A child shard may be read once every parent lease is at SHARD_END or gone.

    ``checkpoints`` maps the shard id of every existing lease to its checkpoint.
    """
    return all(checkpoints.get(parent, SHARD_END) == SHARD_END for parent in parent_shard_ids)


# Checkpoints of a lease whose shard has not been read yet.
START_POSITIONS = frozenset({"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"})


def started(checkpoint: str) -> bool:
    """The shard's reading has begun: a sequence number, or SHARD_END."""
    return checkpoint not in START_POSITIONS


def finished_leases(checkpoints: Mapping[str, str], children: Mapping[str, Set[str]],
                    listed: Set[str]) -> list[str]:
    """Leases of finished shards that may be deleted (KCL's completed-lease cleanup).

    A lease at SHARD_END goes once every child shard has a lease that has started (the
    children no longer need it: ``parents_done`` treats a missing parent as finished), or
    once ListShards stops listing its shard (trimmed after the retention period).
    ``checkpoints``: every lease's checkpoint; ``children``: its recorded child shards;
    ``listed``: the shard ids of a complete listing.
    """
    out = []
    for shard, cp in checkpoints.items():
        if cp != SHARD_END:
            continue
        kids = children.get(shard, frozenset())
        if shard not in listed or (kids and all(
                k in checkpoints and started(checkpoints[k]) for k in kids)):
            out.append(shard)
    return sorted(out)


def superseded(parents: Mapping[str, Sequence[str]], checkpoints: Mapping[str, str]) -> set[str]:
    """Listed shards that must never get a lease again: the ancestors of a shard whose lease
    has started. Their own leases were finished (or the child could not have started) and
    may since have been deleted; a new lease would read them again from the start.
    ``parents``: shard -> its parent shards, from the listing."""
    out: set[str] = set()
    stack = [p for s, cp in checkpoints.items() if started(cp) for p in parents.get(s, ())]
    while stack:
        p = stack.pop()
        if p not in out:
            out.add(p)
            stack.extend(parents.get(p, ()))
    return out


def lineage_order(parents: Mapping[str, Sequence[str]]) -> list[str]:
    """The listed shards, each after its listed parents (Kahn's order, ties by shard id)."""
    waiting = {s: {p for p in ps if p in parents and p != s} for s, ps in parents.items()}
    kids: dict[str, list[str]] = {}
    for s, ps in waiting.items():
        for p in ps:
            kids.setdefault(p, []).append(s)
    ready = [s for s, ps in waiting.items() if not ps]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        s = heapq.heappop(ready)
        out.append(s)
        for k in kids.get(s, ()):
            waiting[k].discard(s)
            if not waiting[k]:
                heapq.heappush(ready, k)
    # a cycle cannot come from Kinesis; keep such shards rather than drop them
    return out + sorted(set(parents) - set(out))
