"""The contract for source positions in the ledger table's snapshot summaries.

Every Dredge commit to the table writes the summary property :data:`POSITIONS_PROPERTY`
(``dredge.positions``), JSON::

    {"<stream>/<shard id>": ["<sequence number>" or "SHARD_END", <sub-sequence>], ...}

for EVERY shard ever committed, not only the shards of that commit: each commit carries the
complete map forward, so the current snapshot alone tells every position, and expiring old
snapshots loses nothing. A shard's rows up to and including its position are in the table.

**Any commit to the table by anyone must carry the map forward** (Dredge's daemon and replay,
housekeeping such as compaction or a rewrite: build its summary with
:func:`summary_with_positions` from the summary of the snapshot it replaces, or
:func:`carried_forward`). A commit that forgets it (another engine's) is tolerated by the
reader: :func:`committed_positions` walks back to the newest ancestor that has the map, which
is lost only once that ancestor is expired.

Kinesis stream names have no ``/``: the key splits at the first one. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "POSITIONS_PROPERTY",
    "SHARD_END",
    "carried_forward",
    "committed_positions",
    "later",
    "parse_positions",
    "summary_with_positions",
]

POSITIONS_PROPERTY = "dredge.positions"
SHARD_END = "SHARD_END"

ShardKey = tuple[str, str]  # (stream, shard id)
ShardPosition = tuple[str, int]  # (sequence number or SHARD_END, sub-sequence)


def _rank(position: ShardPosition) -> tuple[int, int, int]:
    seq, sub = position
    if seq == SHARD_END:
        return (2, 0, 0)
    if seq.isdigit():
        return (1, int(seq), sub)
    return (0, 0, 0)


def later(a: ShardPosition | None, b: ShardPosition | None) -> ShardPosition | None:
    """The later of two positions of one shard (None: nothing committed)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if _rank(b) > _rank(a) else a


def parse_positions(text: str | None) -> dict[ShardKey, ShardPosition]:
    """The map of one summary's property value (None or empty: no map)."""
    if not text:
        return {}
    raw = json.loads(text)
    out: dict[ShardKey, ShardPosition] = {}
    for key, (seq, sub) in raw.items():
        stream, _, shard = key.partition("/")
        out[(stream, shard)] = (str(seq), int(sub))
    return out


def _summary_map(summary: Any) -> Mapping[str, str]:
    """A pyiceberg ``Summary`` or a plain mapping, as a mapping (None: empty)."""
    if summary is None:
        return {}
    extra = getattr(summary, "additional_properties", None)
    return extra if extra is not None else summary  # type: ignore[no-any-return]


def summary_with_positions(previous: Any, updates: Mapping[ShardKey, ShardPosition]
                           ) -> dict[str, str]:
    """Summary properties for a new commit: the map of ``previous`` (the summary of the
    snapshot the commit builds on: a pyiceberg ``Summary``, a mapping, or None) with
    ``updates`` applied (each shard's new position replaces its old one)."""
    positions = parse_positions(_summary_map(previous).get(POSITIONS_PROPERTY))
    positions.update(updates)
    body = {f"{stream}/{shard}": [seq, sub]
            for (stream, shard), (seq, sub) in sorted(positions.items())}
    return {POSITIONS_PROPERTY: json.dumps(body, separators=(",", ":"))}


def _positions_snapshot(table: Any) -> Any:
    """The newest snapshot of the main branch's ancestry that has the map (None: none has)."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        if POSITIONS_PROPERTY in _summary_map(snapshot.summary):
            return snapshot
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return None


def committed_positions(table: Any) -> dict[ShardKey, ShardPosition]:
    """(stream, shard) -> (sequence or SHARD_END, sub-sequence) committed in ``table`` (a
    pyiceberg Table, as loaded or refreshed)."""
    snapshot = _positions_snapshot(table)
    if snapshot is None:
        return {}
    return parse_positions(_summary_map(snapshot.summary).get(POSITIONS_PROPERTY))


def carried_forward(table: Any, updates: Mapping[ShardKey, ShardPosition] | None = None
                    ) -> dict[str, str]:
    """Summary properties for the next commit to ``table``: its committed map with
    ``updates`` applied; with no updates, what a commit that moves no position (housekeeping)
    must carry (empty when nothing was ever committed)."""
    snapshot = _positions_snapshot(table)
    if snapshot is None and not updates:
        return {}
    return summary_with_positions(snapshot.summary if snapshot is not None else None, updates or {})
