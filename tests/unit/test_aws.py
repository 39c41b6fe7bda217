"""dredge.aws: error codes and retryability, error translation, regions, assumed roles (moto's STS)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dredge.aws import (
    RETRYABLE_CODES,
    AssumedRole,
    Backoff,
    assume_role,
    assumed_role_session,
    error_code,
    error_name,
    http_status,
    resolve_region,
    retry_reason,
    translated,
)
from dredge.errors import CheckpointError, SourceError
from dredge.testing import MotoServer

ROLE = "arn:aws:iam::123456789012:role/dredge-reader"


def client_error(code: str, status: int = 400, op: str = "GetRecords") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def test_error_code_of_client_errors_only() -> None:
    assert error_code(client_error("ThrottlingException")) == "ThrottlingException"
    assert error_code(ClientError({}, "PutRecords")) == ""  # an answer naming no code
    assert error_code(EndpointConnectionError(endpoint_url="http://x")) is None
    assert error_code(ValueError("bug")) is None


def test_http_status_and_error_name() -> None:
    assert http_status(client_error("X", 503)) == 503
    assert http_status(ClientError({"Error": {"Code": "X"}}, "op")) == 0
    assert http_status(OSError("reset")) == 0
    assert error_name(client_error("ExpiredIteratorException")) == "ExpiredIteratorException"
    assert error_name(EndpointConnectionError(endpoint_url="http://x")) == "EndpointConnectionError"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (client_error("ProvisionedThroughputExceededException"), "throttled"),
        (client_error("LimitExceededException"), "throttled"),
        (client_error("KMSThrottlingException"), "kms_throttled"),
        (client_error("InternalFailure", 500), "server_error"),
        (client_error("RequestTimeout", 408), "server_error"),
        (client_error("SomethingNew", 502), "server_error"),  # any 5xx
        (EndpointConnectionError(endpoint_url="http://x"), "network_error"),
        (ConnectionResetError(), "network_error"),
        (TimeoutError(), "network_error"),
        (aiohttp.ServerDisconnectedError(), "network_error"),
        (client_error("AccessDeniedException"), None),
        (client_error("ResourceNotFoundException"), None),
        (client_error("ValidationException"), None),
        (ValueError("a bug is never retried"), None),
    ],
)
def test_retry_reason(exc: BaseException, reason: str | None) -> None:
    assert retry_reason(exc) == reason


def test_retryable_codes_cover_each_family() -> None:
    for code in ("ThrottlingException", "KMSThrottlingException", "ServiceUnavailable",
                 "RequestTimeout"):
        assert code in RETRYABLE_CODES
    assert "AccessDeniedException" not in RETRYABLE_CODES


def test_translated_wraps_and_chains() -> None:
    cause = client_error("ResourceNotFoundException")
    with (pytest.raises(SourceError, match=r"^ListShards s: An error occurred \(ResourceNotFound")
          as info, translated(SourceError, "ListShards s")):
        raise cause
    assert info.value.__cause__ is cause
    with (pytest.raises(CheckpointError, match=r"^lease t: ConnectionResetError: reset$"),
          translated(CheckpointError, "lease t")):
        raise ConnectionResetError("reset")
    with pytest.raises(KeyError), translated(SourceError, "x"):  # not AWS trouble: untouched
        raise KeyError("k")


def test_resolve_region_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert resolve_region() == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert resolve_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert resolve_region() == "ap-south-1"
    assert resolve_region("us-west-2") == "us-west-2"


def test_assume_role_returns_temporary_credentials(moto: MotoServer) -> None:
    creds = asyncio.run(assume_role(AssumedRole(ROLE, "unit", "ext-1"), "us-east-1",
                                    moto.endpoint))
    assert creds.access_key and creds.secret_key and creds.token
    assert creds.expiry > datetime.now(UTC) - timedelta(minutes=1)
    assert set(creds.client_kwargs()) == {"aws_access_key_id", "aws_secret_access_key",
                                          "aws_session_token"}
    assert creds.client_kwargs()["aws_session_token"] == creds.token


def test_assumed_role_session_acts_as_the_role(moto: MotoServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto.endpoint)

    async def main() -> dict[str, Any]:
        session = assumed_role_session(AssumedRole(ROLE, "unit-session"), "us-east-1")
        async with session.create_client("sts", region_name="us-east-1") as sts:
            who: dict[str, Any] = await sts.get_caller_identity()
            return who

    who = asyncio.run(main())
    assert who["Arn"].endswith(":assumed-role/dredge-reader/unit-session")


def test_backoff_full_jitter_capped_and_reset() -> None:
    b = Backoff(0.1, 2.0, random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(b.ceiling())
        d = b.next_delay()
        assert 0 <= d <= ceilings[-1]
    assert ceilings[:5] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert ceilings[5:] == pytest.approx([2.0, 2.0, 2.0])
    b.reset()
    assert b.ceiling() == pytest.approx(0.1)
    many = [Backoff(1.0, 1.0, random.Random(i)).next_delay() for i in range(200)]
    assert 0.4 < sum(many) / len(many) < 0.6  # uniform on [0, 1]: jittered, not fixed


def test_invalid_backoff_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)
