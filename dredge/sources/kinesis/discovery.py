"""Shard discovery: ListShards, paginated, into ``ShardInfo`` plus whether a shard is closed.

A closed shard (split or merged) has an ``EndingSequenceNumber``; its children name it as
``ParentShardId`` / ``AdjacentParentShardId``. ``ShardCatalog`` keeps the latest listing for
the readers (a reader asks whether its shard has closed, to recognise its end on emulators
that never return a null ``NextShardIterator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dredge.aws import translated
from dredge.errors import SourceError
from dredge.sources.kinesis.shards import ShardInfo


@dataclass(frozen=True)
class Shard:
    info: ShardInfo
    ending_sequence: str | None  # None while the shard is open

    @property
    def shard_id(self) -> str:
        return self.info.shard_id


async def list_shards(client: Any, stream_name: str) -> list[Shard]:
    """Every shard ListShards reports for the stream (all pages)."""
    shards: list[Shard] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    with translated(SourceError, f"ListShards {stream_name}"):
        while True:
            page = await client.list_shards(**kwargs)
            for s in page.get("Shards", []):
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                keys = s.get("HashKeyRange", {})
                shards.append(Shard(
                    ShardInfo(s["ShardId"], parents, keys.get("StartingHashKey"),
                              keys.get("EndingHashKey")),
                    s.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
                ))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}  # with a token, ListShards refuses StreamName


class ShardCatalog:
    """The latest listing of one stream, replaced (not mutated) on each re-list."""

    def __init__(self) -> None:
        self._by_id: dict[str, Shard] = {}

    def update(self, shards: list[Shard]) -> None:
        self._by_id = {s.shard_id: s for s in shards}

    def get(self, shard_id: str) -> Shard | None:
        return self._by_id.get(shard_id)

    def ending_sequence(self, shard_id: str) -> str | None:
        shard = self._by_id.get(shard_id)
        return None if shard is None else shard.ending_sequence

    def __len__(self) -> int:
        return len(self._by_id)
