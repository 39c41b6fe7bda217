"""The stream's AWS clients: arguments (region, endpoint, timeouts, retries) and real calls to
moto, with and without an assumed role."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import boto3
import pytest

from dredge.sources.kinesis.clients import (
    client_args,
    dynamodb_client,
    kinesis_client,
    read_records,
    utc_timestamp,
)
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig
from dredge.testing import MotoServer


def test_client_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    cfg = KinesisConfig(connect_timeout_s=1.5, read_timeout_s=7.0)
    args = client_args("", "", cfg, {"total_max_attempts": 1, "mode": "standard"},
                       max_pool_connections=64)
    assert set(args) == {"region_name", "config"}  # no endpoint: the SDK's (or AWS_ENDPOINT_URL)
    assert args["region_name"] == "eu-central-1"
    conf = args["config"]
    assert (conf.connect_timeout, conf.read_timeout, conf.max_pool_connections) == (1.5, 7.0, 64)
    assert conf.retries == {"total_max_attempts": 1, "mode": "standard"}
    args = client_args("ap-south-1", "http://127.0.0.1:1", cfg, {"max_attempts": 3})
    assert (args["region_name"], args["endpoint_url"]) == ("ap-south-1", "http://127.0.0.1:1")


def test_utc_timestamp() -> None:
    expected = datetime(2025, 11, 24, 16, 0, 0, 500000, tzinfo=UTC)
    assert utc_timestamp(1764000000.5) == expected
    assert utc_timestamp(1764000000.5).tzinfo is UTC
    assert utc_timestamp("2025-11-24T16:00:00.5Z") == expected
    assert utc_timestamp("2025-11-24T17:00:00.5+01:00") == expected


def _stream(moto: MotoServer) -> str:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint)
    kin.create_stream(StreamName=name, ShardCount=1)
    kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


@pytest.mark.parametrize("role_arn", ["", "arn:aws:iam::123456789012:role/reader"])
def test_kinesis_client_reads_the_stream(moto: MotoServer, role_arn: str) -> None:
    name = _stream(moto)
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint)
    kin.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    shard = kin.list_shards(StreamName=name)["Shards"][0]["ShardId"]

    async def main() -> tuple[str, int, list[dict[str, object]]]:
        stream = StreamConfig(name=name, endpoint_url=moto.endpoint, role_arn=role_arn,
                              region="us-east-1")
        async with kinesis_client(stream, KinesisConfig()) as client:
            summary = (await client.describe_stream_summary(StreamName=name))["StreamDescriptionSummary"]
            it = (await client.get_shard_iterator(StreamName=name, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
            records = (await client.get_records(ShardIterator=it))["Records"]
            return summary["StreamName"], summary["OpenShardCount"], records

    stream_name, shards, records = asyncio.run(main())
    assert (stream_name, shards) == (name, 1)
    assert records[0]["Data"] == b"x"
    arrived = records[0]["ApproximateArrivalTimestamp"]
    assert isinstance(arrived, datetime) and arrived.tzinfo is UTC  # our parser, not dateutil's


def test_dynamodb_client_reaches_the_lease_endpoint(moto: MotoServer) -> None:
    table = f"leases-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto.endpoint).create_table(
        TableName=table, KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")

    async def main() -> list[str]:
        async with dynamodb_client(LeaseConfig(endpoint_url=moto.endpoint, region="us-east-1"),
                                   KinesisConfig()) as client:
            names: list[str] = (await client.list_tables())["TableNames"]
            return names

    assert table in asyncio.run(main())


def _parse(body: bytes, status: int = 200, ours: bool = True) -> dict[str, object]:
    """A GetRecords answer parsed as the Kinesis client does (``ours``: with read_records),
    or by botocore alone with the same timestamp parser (the reference)."""
    import botocore.session
    from botocore.parsers import ResponseParserFactory

    shape = botocore.session.get_session().get_service_model("kinesis").operation_model(
        "GetRecords").output_shape
    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=utc_timestamp)
    response = {"body": body, "headers": {}, "status_code": status}
    custom: dict[str, object] = {}
    if ours:
        read_records(response, custom)
    parsed: dict[str, object] = factory.create_parser("json").parse(response, shape)
    parsed.update(custom)
    parsed.pop("ResponseMetadata", None)
    return parsed


GET_RECORDS_ANSWERS = [
    {"Records": [{"SequenceNumber": "4959", "ApproximateArrivalTimestamp": 1764000000.25,
                  "Data": "eA==", "PartitionKey": "k"},
                 {"SequenceNumber": "4960", "ApproximateArrivalTimestamp": 1764000001,
                  "Data": "", "PartitionKey": "k2", "EncryptionType": "KMS"}],
     "NextShardIterator": "it", "MillisBehindLatest": 12},
    {"Records": [], "NextShardIterator": None, "MillisBehindLatest": 0,
     "ChildShards": [{"ShardId": "s-2", "ParentShards": ["s-1"],
                      "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "9"}}]},
    {"Records": [{"SequenceNumber": "1", "Data": "eA", "PartitionKey": "k"}]},  # bad base64: refused
    {"NextShardIterator": "it"},  # no Records at all: botocore's
    {"Records": [{"SequenceNumber": "1", "PartitionKey": "k"}]},  # no Data: botocore's
    {"Records": "nonsense"},  # refused
]


@pytest.mark.parametrize("answer", GET_RECORDS_ANSWERS)
def test_read_records_agrees_with_botocore(answer: dict[str, object]) -> None:
    body = json.dumps(answer).encode()

    def outcome(ours: bool) -> object:
        try:
            return _parse(body, ours=ours)
        except Exception as exc:  # botocore refuses some: then both must, alike
            return type(exc)

    assert outcome(True) == outcome(False)


def test_read_records_leaves_errors_and_bad_json_to_botocore() -> None:
    error = b'{"__type": "ExpiredIteratorException", "message": "expired"}'
    response = {"body": error, "headers": {}, "status_code": 400}
    custom: dict[str, object] = {}
    read_records(response, custom)
    assert (response["body"], custom) == (error, {})
    response = {"body": b"{not json", "headers": {}, "status_code": 200}
    read_records(response, custom)
    assert (response["body"], custom) == (b"{not json", {})


def test_read_records_does_the_parse() -> None:
    body = json.dumps(GET_RECORDS_ANSWERS[0]).encode()
    response = {"body": body, "headers": {}, "status_code": 200}
    custom: dict[str, object] = {}
    read_records(response, custom)
    assert json.loads(response["body"]) == {"NextShardIterator": "it", "MillisBehindLatest": 12}
    assert [r["Data"] for r in custom["Records"]] == [b"x", b""]  # type: ignore[attr-defined]
