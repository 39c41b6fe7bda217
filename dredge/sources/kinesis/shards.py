"""Shard types every Kinesis module shares: positions along a shard, shards as listed, checkpoints.

A position is one of the start sentinels (``TRIM_HORIZON``, ``LATEST``, ``AT_TIMESTAMP``),
a sequence number (``SEQUENCE``, with the sub-sequence of a KPL aggregate), or
``SHARD_END``. The lease table stores it as KCL does: a sequence number or a sentinel in
``checkpoint`` and the sub-sequence beside it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dredge.errors import ConfigError

__all__ = [
    "AT_TIMESTAMP",
    "INITIAL_POSITIONS",
    "LATEST",
    "SENTINELS",
    "SEQUENCE",
    "SHARD_END",
    "TRIM_HORIZON",
    "Position",
    "ShardCheckpoint",
    "ShardInfo",
    "check_initial_position",
    "furthest",
]

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
AT_TIMESTAMP = "AT_TIMESTAMP"
SHARD_END = "SHARD_END"
SEQUENCE = "SEQUENCE"  # a Position's kind when it holds a sequence number
INITIAL_POSITIONS = frozenset({TRIM_HORIZON, LATEST, AT_TIMESTAMP})
SENTINELS = INITIAL_POSITIONS | {SHARD_END}


def check_initial_position(value: str, key: str) -> None:
    """Where a shard without a checkpoint starts: refused with ``ConfigError(key)`` unless a start sentinel."""
    if value not in INITIAL_POSITIONS:
        raise ConfigError(key, f"one of {sorted(INITIAL_POSITIONS)}")


@dataclass(frozen=True)
class ShardInfo:
    """A shard as shard discovery (ListShards) reports it."""

    shard_id: str
    parent_shard_ids: tuple[str, ...] = ()  # ParentShardId and AdjacentParentShardId
    starting_hash_key: str | None = None
    ending_hash_key: str | None = None


@dataclass(frozen=True)
class Position:
    """Where to start reading a shard."""

    kind: str  # TRIM_HORIZON | LATEST | AT_TIMESTAMP | SEQUENCE | SHARD_END
    sequence: str | None = None
    sub_sequence: int = 0
    timestamp: datetime | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str, sub_sequence: int = 0,
                        timestamp: datetime | None = None) -> Position:
        if checkpoint.isdigit():
            return cls(SEQUENCE, checkpoint, sub_sequence)
        if checkpoint == AT_TIMESTAMP:
            return cls(AT_TIMESTAMP, timestamp=timestamp)
        return cls(checkpoint)

    @property
    def checkpoint(self) -> str:
        """As the lease table's ``checkpoint`` attribute stores it: the sequence number or the sentinel."""
        return self.sequence if self.kind == SEQUENCE and self.sequence else self.kind

    def rank(self) -> tuple[int, int, int]:
        """Order along the shard: start sentinels < sequence numbers < SHARD_END."""
        if self.kind == SHARD_END:
            return (2, 0, 0)
        if self.kind == SEQUENCE and self.sequence is not None:
            return (1, int(self.sequence), self.sub_sequence)
        return (0, 0, 0)

    def __str__(self) -> str:
        if self.kind == SEQUENCE:
            return f"{self.sequence}/{self.sub_sequence}"
        return self.kind


def furthest(a: Position, b: Position) -> Position:
    """The later of two positions of one shard (the first when they are equal)."""
    return b if b.rank() > a.rank() else a


@dataclass(frozen=True)
class ShardCheckpoint:
    """A shard's position after everything before it is stored; ``records``: Kinesis records
    stored since the previous checkpoint of this shard (added to the running total)."""

    stream: str
    shard_id: str
    sequence: str  # a sequence number, or SHARD_END
    sub_sequence: int = 0
    records: int = 0
