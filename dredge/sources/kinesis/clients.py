"""AWS clients for one stream: Kinesis in the stream's region/account (optionally through an
assumed role), DynamoDB for its lease table.

Kinesis clients make no SDK retries: the shard reader retries itself, with its own backoff,
and counts every throttle. Credentials of an assumed role are refreshed before they expire
(``dredge.aws.assumed_role_session``).

Kinesis clients read the records of a GetRecords answer themselves (``read_records``, on
botocore's ``before-parse`` event): orjson, base64 in C, the ``ApproximateArrivalTimestamp``
(epoch seconds) straight to a UTC datetime; botocore parses the rest of the answer. Its own
shape-driven parse cost ~130 us per record, over half of it converting each timestamp through
dateutil's local time zone (``benchmarks/stream.py``). Anything unexpected is left to botocore.
"""

from __future__ import annotations

import contextlib
from binascii import a2b_base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.utils import parse_timestamp

from dredge.aws import AssumedRole, assumed_role_session, resolve_region
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig

__all__ = ["client_args", "dynamodb_client", "kinesis_client", "read_records", "utc_timestamp"]


def _session_for(stream: StreamConfig) -> AioSession:
    if not stream.role_arn:
        session = get_session()
    else:
        role = AssumedRole(stream.role_arn, stream.role_session_name, stream.external_id)
        session = assumed_role_session(role, resolve_region(stream.region))
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=utc_timestamp)
    return session


def utc_timestamp(value: Any) -> datetime:
    """A response timestamp as an aware UTC datetime: epoch seconds at once, anything else
    (text) as botocore reads it."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed: datetime = parse_timestamp(value)
    return parsed.astimezone(UTC)


def client_args(region: str, endpoint_url: str, config: KinesisConfig,
                retries: dict[str, Any], **options: Any) -> dict[str, Any]:
    """``create_client`` keyword arguments: region (resolved), endpoint, timeouts, retries."""
    cfg = AioConfig(retries=retries, connect_timeout=config.connect_timeout_s,
                    read_timeout=config.read_timeout_s, **options)
    kwargs: dict[str, Any] = {"region_name": resolve_region(region), "config": cfg}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return kwargs


def read_records(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
                 **_: Any) -> None:
    """``before-parse.kinesis.GetRecords``: take the records out of a successful answer's body
    and read them here; botocore then parses what is left (iterator, ChildShards, ...)."""
    if response_dict.get("status_code", 500) >= 300:
        return
    try:
        doc = orjson.loads(response_dict["body"])
        records = doc.pop("Records")
        parsed = [_record(r) for r in records]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        return  # not the usual shape: botocore parses (or refuses) the whole answer
    customized_response_dict["Records"] = parsed
    response_dict["body"] = orjson.dumps(doc)


def _record(r: dict[str, Any]) -> dict[str, Any]:
    out = {"SequenceNumber": r["SequenceNumber"], "Data": a2b_base64(r["Data"]),
           "PartitionKey": r["PartitionKey"]}
    if "ApproximateArrivalTimestamp" in r:
        out["ApproximateArrivalTimestamp"] = utc_timestamp(r["ApproximateArrivalTimestamp"])
    if "EncryptionType" in r:
        out["EncryptionType"] = r["EncryptionType"]
    return out


@contextlib.asynccontextmanager
async def kinesis_client(stream: StreamConfig, config: KinesisConfig) -> AsyncIterator[Any]:
    kwargs = client_args(stream.region, stream.endpoint_url, config,
                         {"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=64)
    async with _session_for(stream).create_client("kinesis", **kwargs) as client:
        client.meta.events.register("before-parse.kinesis.GetRecords", read_records)
        yield client


@contextlib.asynccontextmanager
async def dynamodb_client(lease: LeaseConfig, config: KinesisConfig) -> AsyncIterator[Any]:
    kwargs = client_args(lease.region, lease.endpoint_url, config,
                         {"max_attempts": 3, "mode": "standard"})
    async with get_session().create_client("dynamodb", **kwargs) as client:
        yield client
