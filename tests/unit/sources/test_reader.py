"""ShardReader: positions, faults and the shard's end, against a scripted client (every fault
Kinesis can answer, deterministic, no waiting) and against moto's Kinesis."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dredge.errors import SourceError
from dredge.sources.kinesis.clients import kinesis_client
from dredge.sources.kinesis.config import KinesisConfig, StreamConfig
from dredge.sources.kinesis.discovery import ShardCatalog, list_shards
from dredge.sources.kinesis.metrics import reader_events_total
from dredge.sources.kinesis.reader import ReadBatch, ShardReader
from dredge.sources.kinesis.shards import (
    SEQUENCE,
    SHARD_END,
    TRIM_HORIZON,
    Position,
)
from dredge.testing import MotoServer

SHARD = "shardId-000000000000"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Call")


def records(*seqs: int) -> dict[str, Any]:
    return {"Records": [{"Data": f"r{s}".encode(), "SequenceNumber": str(s)} for s in seqs],
            "NextShardIterator": "it-next", "MillisBehindLatest": 0}


END: dict[str, Any] = {"Records": [], "NextShardIterator": None, "MillisBehindLatest": 0}


class ScriptedKinesis:
    """Answers (or raises) in order; records every call's arguments."""

    def __init__(self, iterators: list[Any], gets: list[Any]) -> None:
        self._iterators = deque(iterators)
        self._gets = deque(gets)
        self.iterator_calls: list[dict[str, Any]] = []
        self.get_calls: list[dict[str, Any]] = []
        self.get_times: list[float] = []
        self.clock = lambda: 0.0

    async def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.iterator_calls.append(kwargs)
        answer = self._iterators.popleft() if self._iterators else {"ShardIterator": "it"}
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)

    async def get_records(self, **kwargs: Any) -> dict[str, Any]:
        self.get_calls.append(kwargs)
        self.get_times.append(self.clock())
        answer = self._gets.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)


class Harness:
    def __init__(self, client: ScriptedKinesis, start: Position) -> None:
        self.stream = f"s-{uuid.uuid4().hex[:8]}"
        self.batches: list[ReadBatch] = []
        self.sleeps: list[float] = []
        self.now = 1000.0  # a fake clock that sleeping moves on
        client.clock = lambda: self.now
        config = KinesisConfig(max_records=500, idle_poll_interval_s=0.5, backoff_base_s=0.2,
                               backoff_max_s=10.0)
        self.reader = ShardReader(client, self.stream, SHARD, 7, start, self.deliver, config,
                                  ShardCatalog(), clock=lambda: self.now, sleep=self.sleep,
                                  rng=random.Random(3))

    async def deliver(self, batch: ReadBatch) -> None:
        self.batches.append(batch)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def run(self) -> None:
        asyncio.run(self.reader.run())

    def events(self, event: str) -> float:
        value: float = reader_events_total.labels(self.stream, event).value
        return value

    def sequences(self) -> list[str]:
        return [s for b in self.batches for s in b.sequences]


def test_reads_in_order_then_hands_over_the_shard_end() -> None:
    client = ScriptedKinesis([], [records(1, 2), records(3), END])
    h = Harness(client, Position(TRIM_HORIZON))
    h.run()
    assert h.sequences() == ["1", "2", "3"]
    assert [b.epoch for b in h.batches] == [7, 7, 7]
    assert h.batches[-1].shard_end and h.batches[-1].data == []
    assert h.reader.finished and h.reader.position == Position(SHARD_END)
    assert client.iterator_calls == [{"StreamName": h.stream, "ShardId": SHARD,
                                      "ShardIteratorType": TRIM_HORIZON}]
    assert [c["ShardIterator"] for c in client.get_calls] == ["it", "it-next", "it-next"]
    assert all(c["Limit"] == 500 for c in client.get_calls)


def test_throttling_server_and_network_errors_are_waited_out_and_counted() -> None:
    client = ScriptedKinesis(
        [EndpointConnectionError(endpoint_url="http://x"), {"ShardIterator": "it"}],
        [client_error("ProvisionedThroughputExceededException"), client_error("InternalFailure", 500),
         client_error("KMSThrottlingException"), records(10), END])
    h = Harness(client, Position(TRIM_HORIZON))
    h.run()
    assert h.sequences() == ["10"]
    assert [h.events(e) for e in ("network_error", "throttled", "server_error", "kms_throttled")] \
        == [1, 1, 1, 1]
    # Retries still respect the shard's 5 calls per second.
    assert all(b - a >= 0.2 - 1e-9 for a, b in zip(client.get_times, client.get_times[1:], strict=False))
    assert [c["ShardIterator"] for c in client.get_calls] == ["it", "it", "it", "it", "it-next"]


def test_a_final_error_stops_the_reader() -> None:
    client = ScriptedKinesis([], [client_error("AccessDeniedException")])
    h = Harness(client, Position(TRIM_HORIZON))
    with pytest.raises(SourceError, match="AccessDeniedException"):
        h.run()
    assert h.batches == []


def test_expired_iterator_resumes_after_the_last_record_handed_over() -> None:
    client = ScriptedKinesis([], [records(4, 5), client_error("ExpiredIteratorException"),
                                  records(6), END])
    h = Harness(client, Position(TRIM_HORIZON))
    h.run()
    assert h.sequences() == ["4", "5", "6"]
    assert client.iterator_calls[1] == {"StreamName": h.stream, "ShardId": SHARD,
                                        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                                        "StartingSequenceNumber": "5"}
    assert h.events("expired_iterator") == 1


def test_trimmed_checkpoint_falls_back_to_trim_horizon() -> None:
    client = ScriptedKinesis([client_error("InvalidArgumentException")], [records(90), END])
    h = Harness(client, Position(SEQUENCE, "42", 0))
    h.run()
    assert [c["ShardIteratorType"] for c in client.iterator_calls] == ["AFTER_SEQUENCE_NUMBER",
                                                                      TRIM_HORIZON]
    assert h.sequences() == ["90"] and h.events("trimmed_checkpoint") == 1


def test_a_refused_start_sentinel_is_not_mistaken_for_a_trimmed_checkpoint() -> None:
    client = ScriptedKinesis([client_error("InvalidArgumentException")], [])
    h = Harness(client, Position(TRIM_HORIZON))
    with pytest.raises(SourceError):
        h.run()


def test_a_deleted_shard_ends_without_reading() -> None:
    client = ScriptedKinesis([client_error("ResourceNotFoundException")], [])
    h = Harness(client, Position(TRIM_HORIZON))
    h.run()
    assert [b.shard_end for b in h.batches] == [True]
    assert client.get_calls == [] and h.events("shard_gone") == 1


def test_kpl_sub_sequence_resumes_at_the_record_and_says_what_to_skip() -> None:
    client = ScriptedKinesis([], [records(8, 9), records(10), END])
    h = Harness(client, Position(SEQUENCE, "8", 3))
    h.run()
    assert client.iterator_calls[0]["ShardIteratorType"] == "AT_SEQUENCE_NUMBER"
    assert client.iterator_calls[0]["StartingSequenceNumber"] == "8"
    assert [b.skip_through_subseq for b in h.batches] == [3, -1, -1]


def test_a_finished_shard_is_not_read_again() -> None:
    client = ScriptedKinesis([], [])
    h = Harness(client, Position(SHARD_END))
    h.run()
    assert [b.shard_end for b in h.batches] == [True]
    assert client.iterator_calls == [] and client.get_calls == []


def test_restarted_reader_continues_after_the_last_record() -> None:
    client = ScriptedKinesis([], [records(1, 2), ValueError("boom")])
    h = Harness(client, Position(TRIM_HORIZON))
    with pytest.raises(ValueError):  # a crash: the consumer's supervisor restarts the reader
        h.run()
    again = h.reader.restarted()
    assert again is not h.reader and again.start == Position(SEQUENCE, "2", 0)
    assert again.position == again.start and not again.finished and again.epoch == 7


def test_reads_a_real_stream(moto: MotoServer) -> None:
    name = f"reader-{uuid.uuid4().hex[:8]}"
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint)
    kin.create_stream(StreamName=name, ShardCount=1)
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    put = [kin.put_record(StreamName=name, Data=f"line {i}".encode(), PartitionKey="p")
           ["SequenceNumber"] for i in range(5)]
    got: list[ReadBatch] = []

    async def main() -> None:
        cfg = KinesisConfig(idle_poll_interval_s=0.01)
        async with kinesis_client(StreamConfig(name=name, endpoint_url=moto.endpoint), cfg) as client:
            catalog = ShardCatalog()
            catalog.update(await list_shards(client, name))

            async def deliver(batch: ReadBatch) -> None:
                got.append(batch)

            reader = ShardReader(client, name, SHARD, 1, Position(TRIM_HORIZON), deliver, cfg,
                                 catalog)
            task = asyncio.create_task(reader.run())
            async with asyncio.timeout(30):
                while sum(len(b.data) for b in got) < len(put):
                    await asyncio.sleep(0.01)
            task.cancel()

    asyncio.run(main())
    assert [s for b in got for s in b.sequences] == put
    assert [d for b in got for d in b.data] == [f"line {i}".encode() for i in range(5)]
