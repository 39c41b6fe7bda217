"""Shard discovery: ListShards (all pages) into ShardInfo + closed or open, against moto and a
paging client; the catalog the readers ask."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import boto3
import pytest

from dredge.errors import SourceError
from dredge.sources.kinesis.clients import kinesis_client
from dredge.sources.kinesis.config import KinesisConfig, StreamConfig
from dredge.sources.kinesis.discovery import Shard, ShardCatalog, list_shards
from dredge.sources.kinesis.shards import ShardInfo
from dredge.testing import MotoServer


def _listed(moto: MotoServer, name: str) -> list[Shard]:
    async def main() -> list[Shard]:
        async with kinesis_client(StreamConfig(name=name, endpoint_url=moto.endpoint),
                                  KinesisConfig()) as client:
            return await list_shards(client, name)

    return asyncio.run(main())


def test_split_shard_is_closed_and_named_as_parent(moto: MotoServer) -> None:
    name = f"disc-{uuid.uuid4().hex[:8]}"
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint)
    kin.create_stream(StreamName=name, ShardCount=2)
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    before = _listed(moto, name)
    assert [s.shard_id for s in before] == ["shardId-000000000000", "shardId-000000000001"]
    assert all(s.ending_sequence is None and s.info.parent_shard_ids == () for s in before)
    first = before[0].info
    assert first.starting_hash_key == "0" and first.ending_hash_key is not None
    middle = (int(first.starting_hash_key) + int(first.ending_hash_key)) // 2
    kin.split_shard(StreamName=name, ShardToSplit=first.shard_id, NewStartingHashKey=str(middle))
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})

    after = {s.shard_id: s for s in _listed(moto, name)}
    assert after[first.shard_id].ending_sequence is not None  # closed by the split
    assert after["shardId-000000000001"].ending_sequence is None
    children = [s for s in after.values() if s.info.parent_shard_ids == (first.shard_id,)]
    assert len(children) == 2
    assert sorted(int(c.info.starting_hash_key or -1) for c in children) == [0, middle]


def test_missing_stream_is_a_source_error(moto: MotoServer) -> None:
    with pytest.raises(SourceError, match=r"^ListShards no-such-stream: .*ResourceNotFound"):
        _listed(moto, "no-such-stream")


class PagingKinesis:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def list_shards(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if "NextToken" not in kwargs:
            return {"Shards": [{"ShardId": "a", "HashKeyRange": {"StartingHashKey": "0",
                                                                 "EndingHashKey": "9"},
                                "SequenceNumberRange": {"StartingSequenceNumber": "1",
                                                        "EndingSequenceNumber": "5"}}],
                    "NextToken": "page-2"}
        return {"Shards": [{"ShardId": "b", "ParentShardId": "a", "AdjacentParentShardId": "z",
                            "SequenceNumberRange": {"StartingSequenceNumber": "6"}}]}


def test_every_page_is_read_and_a_token_goes_alone() -> None:
    client = PagingKinesis()
    shards = asyncio.run(list_shards(client, "s"))
    assert client.calls == [{"StreamName": "s"}, {"NextToken": "page-2"}]
    assert shards == [Shard(ShardInfo("a", (), "0", "9"), "5"),
                      Shard(ShardInfo("b", ("a", "z"), None, None), None)]


def test_catalog_is_replaced_by_each_listing() -> None:
    catalog = ShardCatalog()
    assert len(catalog) == 0 and catalog.ending_sequence("a") is None
    catalog.update([Shard(ShardInfo("a"), "5"), Shard(ShardInfo("b"), None)])
    assert len(catalog) == 2 and catalog.ending_sequence("a") == "5"
    assert catalog.get("b") == Shard(ShardInfo("b"), None)
    catalog.update([Shard(ShardInfo("b"), "9")])
    assert catalog.get("a") is None and catalog.ending_sequence("b") == "9"
