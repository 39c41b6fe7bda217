"""The Kinesis output publisher: JSON rows, PutRecords limits, partial failures, resume."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dredge.enrich.rollup import FLOWS_SCHEMA, Rolled
from dredge.errors import ConfigError, SinkError
from dredge.sinks.base import ShardCheckpoint
from dredge.sinks.kinesis_out import MAX_CALL_BYTES, KinesisOutConfig, KinesisPublisher, _batches
from dredge.sinks.publishing import PublishingSink
from dredge.sinks.rowcodec import encode, pack
from dredge.telemetry.metrics import REGISTRY


def rows(apps: list[tuple[str, str | None]], bytes_: list[int], start: int = 1795600800) -> pa.Table:
    """Rolled-up rows in the flows schema: one per app pair, other owner fields null."""
    n = len(apps)
    cols = {name: pa.nulls(n, FLOWS_SCHEMA.field(name).type) for name in FLOWS_SCHEMA.names}
    cols["window_start"] = pa.array([start + 60 * (i % 90) for i in range(n)], pa.timestamp("s"))
    cols["src_app"] = pa.array([a[0] for a in apps], pa.string())
    cols["dst_app"] = pa.array([a[1] for a in apps], pa.string())
    cols["protocol"] = pa.array([6 if i % 2 else None for i in range(n)], pa.int16())
    cols["action"] = pa.array(["ACCEPT" if i % 3 else "REJECT" for i in range(n)])
    cols["traffic_path"] = pa.array([None if i % 2 else 1 for i in range(n)], pa.int8())
    cols["port"] = pa.array([(443, None, 0)[i % 3] for i in range(n)], pa.int32())
    cols["bytes"] = pa.array(bytes_, pa.int64())
    cols["packets"] = pa.array([1] * n, pa.int64())
    cols["flows"] = pa.array([1] * n, pa.int64())
    return pa.table(cols, schema=FLOWS_SCHEMA)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def table(n: int, apps: list[tuple[str, str | None]] | None = None) -> pa.Table:
    apps = apps or [(f"app{i % 7}", f"dst{i % 3}") for i in range(n)]
    return rows(apps, list(range(1, len(apps) + 1)))


def test_encode_is_the_flows_row_as_json() -> None:
    t = table(0, [("api", "db"), ("web", None), ('we"ird\\ü', "it's")])
    data, keys = encode(t)
    expected = t.to_pylist()
    for line, row in zip(data, expected, strict=True):
        got = orjson.loads(line)
        assert got.pop("window_start") == row.pop("window_start").strftime("%Y-%m-%dT%H:%M:%SZ")
        assert got == row
    assert keys == ["api|db", "web|", 'we"ird\\ü|it\'s']
    # Rolled (facts + owner ids) and the string table encode the same
    assert encode(Rolled.from_table(t)) == (data, keys)


def test_encode_cuts_partition_keys_at_256_characters() -> None:
    _, keys = encode(table(0, [("a" * 300, "b")]))
    assert len(keys[0]) == 256


def test_batches_respect_record_and_byte_limits() -> None:
    import numpy as np

    data = [b"x" * 100] * 1200
    keys = ["k"] * 1200
    sizes = [len(b) for b in _batches(data, keys, np.arange(1200), 500)]
    assert sizes == [500, 500, 200]
    big = [b"x" * (1000 * 1000)] * 12  # 1 MB each: five fit in 5 MiB, not six
    cut = _batches(big, ["k"] * 12, np.arange(12), 500)
    assert [len(b) for b in cut] == [5, 5, 2]
    assert all(sum(len(big[i]) + 1 for i in b) <= MAX_CALL_BYTES for b in cut)
    with pytest.raises(SinkError, match="1 MiB"):
        _batches([b"x" * (1024 * 1024)], ["k"], np.arange(1), 500)


class StubKinesis:
    """Answers PutRecords from a script: per call, an exception or the indices that fail."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[list[bytes]] = []
        self.stored: list[bytes] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        records = kwargs["Records"]
        self.calls.append([r["Data"] for r in records])
        step = self.script.pop(0) if self.script else []
        if isinstance(step, Exception):
            raise step
        out = []
        for i, r in enumerate(records):
            if i in step:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": "slow down"})
            else:
                self.stored.append(r["Data"])
                out.append({"SequenceNumber": str(len(self.stored)), "ShardId": "shardId-0"})
        return {"FailedRecordCount": len(step), "Records": out}


def publisher(stub: StubKinesis, **kw: Any) -> tuple[KinesisPublisher, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("pack_bytes", 0)  # one row per record: calls are easy to follow
    config = KinesisOutConfig(stream="out", **kw)
    return KinesisPublisher(config, stub, sleep=sleeps.append, rng=random.Random(1)), sleeps


def test_partial_failure_retries_only_the_failed_records() -> None:
    t = table(10)
    data, _ = encode(t)
    stub = StubKinesis([{1, 4}, {0}, []])
    pub, sleeps = publisher(stub)
    retried = value("dredge_sink_rows_total", sink="kinesis", outcome="retried")
    result = pub.publish(t)
    assert stub.calls[0] == data
    assert stub.calls[1] == [data[1], data[4]]
    assert stub.calls[2] == [data[1]]
    assert sorted(stub.stored) == sorted(data)  # each row stored exactly once
    assert result.rows == result.records == 10 and result.retried == 3 and result.calls == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.2 for s in sleeps)  # full jitter, doubling
    assert value("dredge_sink_rows_total", sink="kinesis", outcome="retried") == retried + 3


def test_transport_errors_are_retried_then_reported() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    stub = StubKinesis([down, down, []])
    pub, sleeps = publisher(stub)
    assert pub.publish(table(3)).rows == 3
    assert len(sleeps) == 2

    stub = StubKinesis([down] * 10)
    pub, sleeps = publisher(stub, max_attempts=4, backoff_base_s=0.5, backoff_max_s=1.0)
    failed = value("dredge_sink_rows_total", sink="kinesis", outcome="failed")
    with pytest.raises(SinkError, match="3 record\\(s\\) not stored after 4 attempts"):
        pub.publish(table(3))
    assert len(stub.calls) == 4 and len(sleeps) == 3 and max(sleeps) <= 1.0
    assert value("dredge_sink_rows_total", sink="kinesis", outcome="failed") == failed + 3


def test_a_missing_stream_is_not_retried() -> None:
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}},
                          "PutRecords")
    stub = StubKinesis([missing])
    pub, sleeps = publisher(stub)
    with pytest.raises(SinkError, match="refused PutRecords"):
        pub.publish(table(3))
    assert len(stub.calls) == 1 and not sleeps


def test_the_same_token_resumes_without_sending_twice() -> None:
    t = table(1200)  # three calls of 500, 500, 200
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    stub = StubKinesis([[], down, down])
    pub, _ = publisher(stub, max_attempts=2)
    with pytest.raises(SinkError):
        pub.publish(t, token="flush-1")
    assert len(stub.stored) == 500
    result = pub.publish(t, token="flush-1")  # the flush is retried: the rest only
    assert result.skipped == 500 and result.rows == 700
    assert sorted(stub.stored) == sorted(encode(t)[0])
    # a store failing after a complete publish: the retry sends nothing
    assert pub.publish(t, token="flush-1").rows == 0
    # another flush with the same rows is new data
    assert pub.publish(t, token="flush-2").rows == 1200


def test_pack_keeps_one_key_per_record_and_every_row_once() -> None:
    t = table(300)
    lines, keys = encode(t)
    packed = pack(lines, keys, 2000)
    assert sum(packed.rows) == 300 and len(packed.data) < 300
    seen = []
    for data, key, n in zip(packed.data, packed.keys, packed.rows, strict=True):
        assert len(data) <= 2000
        rows_ = [orjson.loads(x) for x in data.split(b"\n")]
        assert len(rows_) == n and {f"{r['src_app']}|{r['dst_app']}" for r in rows_} == {key}
        seen += data.split(b"\n")
    assert sorted(seen) == sorted(lines)
    stub = StubKinesis([{0}])
    pub, _ = publisher(stub, pack_bytes=2000)
    result = pub.publish(t)
    assert result.rows == 300 and result.records == len(packed.data) and result.retried == 1


class StubStore:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.batches: list[tuple[Any, list[ShardCheckpoint]]] = []

    def store_batch(self, rows: Any, checkpoints: list[ShardCheckpoint]) -> None:
        if self.fail:
            raise SinkError("disk full")
        self.batches.append((rows, checkpoints))

    def checkpoints(self, stream: str) -> dict[str, tuple[str, int]]:
        return {"shardId-0": ("42", 0)}


def test_publishing_sink_checkpoints_only_after_the_publish() -> None:
    t = table(5)
    cps = [ShardCheckpoint("in", "shardId-0", "49", 0, 3)]
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    stub = StubKinesis([down])
    pub, _ = publisher(stub, max_attempts=1)
    store = StubStore()
    sink = PublishingSink(store, pub)
    with pytest.raises(SinkError):
        sink.store_batch([Rolled.from_table(t)], cps)
    assert store.batches == []  # nothing stored, no position moved
    sink.store_batch([Rolled.from_table(t)], cps)
    assert len(store.batches) == 1 and store.batches[0][1] == cps
    assert sink.checkpoints("in") == {"shardId-0": ("42", 0)}  # the store's, passed through

    store.fail = True  # published, then the store fails: the retry does not publish again
    cps2 = [ShardCheckpoint("in", "shardId-0", "50", 0, 1)]
    with pytest.raises(SinkError, match="disk full"):
        sink.store_batch([Rolled.from_table(t)], cps2)
    store.fail = False
    sent = len(stub.stored)
    sink.store_batch([Rolled.from_table(t)], cps2)
    assert len(stub.stored) == sent


def test_config_validation_names_the_field() -> None:
    KinesisOutConfig().validate()
    with pytest.raises(ConfigError, match="max_records"):
        KinesisOutConfig(max_records=501).validate()
    with pytest.raises(ConfigError, match="endpoint_url"):
        KinesisOutConfig(endpoint_url="localhost:4567").validate()
    with pytest.raises(ConfigError, match="pack_bytes"):
        KinesisOutConfig(pack_bytes=1024 * 1024).validate()
    with pytest.raises(ConfigError, match="backoff_base_s"):
        KinesisOutConfig(backoff_base_s=10, backoff_max_s=1).validate()
