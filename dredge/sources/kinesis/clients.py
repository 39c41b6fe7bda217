"""AWS clients for one stream: Kinesis in the stream's region/account (optionally through an
assumed role), DynamoDB for its lease table; and how AWS errors are classified.

Kinesis clients make no SDK retries: the shard reader retries itself, with its own backoff,
and counts every throttle. Credentials of an assumed role are refreshed before they expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from dredge.config import KinesisConfig, LeaseSection, StreamConfig

THROTTLING = frozenset({
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
})
KMS_THROTTLING = frozenset({"KMSThrottlingException"})
SERVER = frozenset({"InternalFailure", "InternalFailureException", "InternalServerError",
                    "ServiceUnavailable", "ServiceUnavailableException"})
# Transport trouble: retried with backoff like a throttle.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, OSError, asyncio.TimeoutError)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def region_of(configured: str) -> str:
    return (configured or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1")


def _session_for(stream: StreamConfig) -> AioSession:
    session = get_session()
    if not stream.role_arn:
        return session
    base = get_session()

    async def refresh() -> dict[str, Any]:
        kwargs: dict[str, Any] = {"RoleArn": stream.role_arn,
                                  "RoleSessionName": stream.role_session_name}
        if stream.external_id:
            kwargs["ExternalId"] = stream.external_id
        async with base.create_client("sts", region_name=region_of(stream.region)) as sts:
            creds = (await sts.assume_role(**kwargs))["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    # aiobotocore has no public setter for refreshable credentials; this is how its own
    # providers install them.
    session._credentials = AioDeferredRefreshableCredentials(refresh, "sts-assume-role")
    return session


@contextlib.asynccontextmanager
async def kinesis_client(stream: StreamConfig, config: KinesisConfig) -> AsyncIterator[Any]:
    cfg = AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
        max_pool_connections=64,
    )
    kwargs: dict[str, Any] = {"region_name": region_of(stream.region), "config": cfg}
    if stream.endpoint_url:
        kwargs["endpoint_url"] = stream.endpoint_url
    async with _session_for(stream).create_client("kinesis", **kwargs) as client:
        yield client


@contextlib.asynccontextmanager
async def dynamodb_client(lease: LeaseSection, config: KinesisConfig) -> AsyncIterator[Any]:
    cfg = AioConfig(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
    )
    kwargs: dict[str, Any] = {"region_name": region_of(lease.region), "config": cfg}
    if lease.endpoint_url:
        kwargs["endpoint_url"] = lease.endpoint_url
    async with get_session().create_client("dynamodb", **kwargs) as client:
        yield client
