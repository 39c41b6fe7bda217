"""AWS clients for one stream: Kinesis in the stream's region/account (optionally through an
assumed role), DynamoDB for its lease table.

Kinesis clients make no SDK retries: the shard reader retries itself, with its own backoff,
and counts every throttle. Credentials of an assumed role are refreshed before they expire
(``dredge.aws.assumed_role_session``).

Kinesis clients read the ``ApproximateArrivalTimestamp`` of every record (epoch seconds in
the JSON protocol) as a UTC datetime directly: botocore's default converts each one through
dateutil's local time zone, which cost more than half of its parse of a GetRecords
response (``benchmarks/stream.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.utils import parse_timestamp

from dredge.aws import AssumedRole, assumed_role_session, resolve_region
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig

__all__ = ["client_args", "dynamodb_client", "kinesis_client", "utc_timestamp"]


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


@contextlib.asynccontextmanager
async def kinesis_client(stream: StreamConfig, config: KinesisConfig) -> AsyncIterator[Any]:
    kwargs = client_args(stream.region, stream.endpoint_url, config,
                         {"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=64)
    async with _session_for(stream).create_client("kinesis", **kwargs) as client:
        yield client


@contextlib.asynccontextmanager
async def dynamodb_client(lease: LeaseConfig, config: KinesisConfig) -> AsyncIterator[Any]:
    kwargs = client_args(lease.region, lease.endpoint_url, config,
                         {"max_attempts": 3, "mode": "standard"})
    async with get_session().create_client("dynamodb", **kwargs) as client:
        yield client
