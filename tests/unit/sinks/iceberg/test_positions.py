from __future__ import annotations

import json
from dataclasses import dataclass, field

from dredge.sinks.iceberg.positions import (
    POSITIONS_PROPERTY,
    carried_forward,
    committed_positions,
    later,
    parse_positions,
    summary_with_positions,
)


@dataclass
class FakeSummary:
    additional_properties: dict[str, str]


@dataclass
class Snap:
    snapshot_id: int
    parent_snapshot_id: int | None
    summary: FakeSummary


@dataclass
class FakeTable:
    """The two methods positions.py reads (pyiceberg's Table has them)."""

    snaps: list[Snap] = field(default_factory=list)

    def commit(self, props: dict[str, str]) -> None:
        parent = self.snaps[-1].snapshot_id if self.snaps else None
        self.snaps.append(Snap(len(self.snaps) + 1, parent, FakeSummary(props)))

    def current_snapshot(self) -> Snap | None:
        return self.snaps[-1] if self.snaps else None

    def snapshot_by_id(self, sid: int) -> Snap | None:
        return next((s for s in self.snaps if s.snapshot_id == sid), None)


def test_summary_carries_every_shard_forward() -> None:
    first = summary_with_positions(None, {("s", "shardId-0"): ("100", 0), ("s", "shardId-1"): ("7", 2)})
    second = summary_with_positions(first, {("s", "shardId-1"): ("SHARD_END", 0)})
    assert parse_positions(second[POSITIONS_PROPERTY]) == {
        ("s", "shardId-0"): ("100", 0), ("s", "shardId-1"): ("SHARD_END", 0)}
    assert json.loads(second[POSITIONS_PROPERTY]) == {"s/shardId-0": ["100", 0], "s/shardId-1": ["SHARD_END", 0]}


def test_committed_positions_walk_past_a_commit_without_the_map() -> None:
    t = FakeTable()
    assert committed_positions(t) == {} and carried_forward(t) == {}
    t.commit(summary_with_positions(None, {("a", "s0"): ("5", 0)}))
    t.commit({"other-engine": "rewrite"})  # a commit that forgot the map
    assert committed_positions(t) == {("a", "s0"): ("5", 0)}
    assert parse_positions(carried_forward(t, {("a", "s1"): ("9", 1)})[POSITIONS_PROPERTY]) == {
        ("a", "s0"): ("5", 0), ("a", "s1"): ("9", 1)}


def test_later_orders_along_the_shard() -> None:
    assert later(None, ("5", 0)) == ("5", 0)
    assert later(("10", 0), ("9", 5)) == ("10", 0)
    assert later(("10", 0), ("10", 1)) == ("10", 1)
    assert later(("99999999999999999999", 0), ("SHARD_END", 0)) == ("SHARD_END", 0)
    assert later(("TRIM_HORIZON", 0), ("1", 0)) == ("1", 0)
