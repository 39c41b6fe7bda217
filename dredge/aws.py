"""AWS plumbing every component shares: error codes and retryability, regions, assumed roles, backoff.

Errors. botocore raises two families, translated here and nowhere else::

    ClientError          the service answered with an error code (``error_code``)
    │   throttled        THROTTLING: ProvisionedThroughputExceeded, Throttling, ...   retry
    │   kms_throttled    KMS_THROTTLING                                                 retry
    │   server_error     SERVER_ERRORS, RequestTimeout or HTTP 5xx                      retry
    │   (anything else)  final: the request itself is wrong
    BotoCoreError, OSError, TimeoutError (``transport_errors()``; aiohttp's too with
    │                    ``aio_transport_errors()``)
        network_error    the request may not have arrived                               retry

``retry_reason(exc)`` names the row (None: final); ``translated(SomeDredgeError, what)``
turns either family into a ``DredgeError`` subclass, chained (``raise ... from exc``).

Regions: ``resolve_region(explicit)``: the explicit one, else ``AWS_REGION``, else
``AWS_DEFAULT_REGION``, else ``us-east-1``. Assumed roles: ``assume_role`` (one STS call)
and ``assumed_role_session`` (an aiobotocore session whose credentials are refreshed
before they expire). ``Backoff``: capped exponential backoff with full jitter.

Nothing here imports botocore, aiobotocore or aiohttp until it is used: settings modules
import this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dredge.errors import DredgeError

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

__all__ = [
    "DEFAULT_REGION",
    "KMS_THROTTLING",
    "RETRYABLE_CODES",
    "SERVER_ERRORS",
    "THROTTLING",
    "AssumedRole",
    "Backoff",
    "Credentials",
    "aio_transport_errors",
    "assume_role",
    "assumed_role_session",
    "error_code",
    "error_name",
    "http_status",
    "resolve_region",
    "retry_reason",
    "translated",
    "transport_errors",
]

DEFAULT_REGION = "us-east-1"

THROTTLING = frozenset({
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
})
KMS_THROTTLING = frozenset({"KMSThrottlingException"})
SERVER_ERRORS = frozenset({"InternalFailure", "InternalFailureException", "InternalServerError",
                           "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout"})
RETRYABLE_CODES = THROTTLING | KMS_THROTTLING | SERVER_ERRORS


# -- errors ------------------------------------------------------------------------------


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError (``""`` when the answer names none); None for any
    other exception (a transport error, a bug)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or "")


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ClientError's answer; 0 when unknown."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def error_name(exc: BaseException) -> str:
    """For a log line: the AWS error code, else the exception's type name."""
    return error_code(exc) or type(exc).__name__


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """Transport trouble (botocore's, the OS's, timeouts): retried with backoff like a throttle."""
    from botocore.exceptions import BotoCoreError

    return (BotoCoreError, OSError, asyncio.TimeoutError)


@functools.cache
def aio_transport_errors() -> tuple[type[BaseException], ...]:
    """``transport_errors()`` plus aiohttp's, for aiobotocore clients (imports aiohttp)."""
    import aiohttp

    return (*transport_errors(), aiohttp.ClientError)


def retry_reason(exc: BaseException) -> str | None:
    """Why a failed call may be sent again (throttled, kms_throttled, server_error,
    network_error); None when it is final."""
    code = error_code(exc)
    if code is None:
        return "network_error" if isinstance(exc, aio_transport_errors()) else None
    if code in THROTTLING:
        return "throttled"
    if code in KMS_THROTTLING:
        return "kms_throttled"
    if code in SERVER_ERRORS or http_status(exc) >= 500:
        return "server_error"
    return None


@contextlib.contextmanager
def translated(error: type[DredgeError], what: str) -> Iterator[None]:
    """Raise botocore's errors (and transport errors) inside as ``error("<what>: ...")``."""
    try:
        yield
    except Exception as exc:
        if error_code(exc) is not None:  # a ClientError: its text names the code
            raise error(f"{what}: {exc}") from exc
        if isinstance(exc, transport_errors()):
            raise error(f"{what}: {type(exc).__name__}: {exc}") from exc
        raise


# -- regions and credentials -------------------------------------------------------------


def resolve_region(explicit: str = "") -> str:
    """The explicit region, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1."""
    return (explicit or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION)


@dataclass(frozen=True)
class AssumedRole:
    """An IAM role to act as (STS AssumeRole)."""

    role_arn: str
    session_name: str = "dredge"
    external_id: str = ""


@dataclass(frozen=True)
class Credentials:
    """Temporary credentials of an assumed role."""

    access_key: str
    secret_key: str
    token: str
    expiry: datetime

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments of ``create_client`` that make a client use them."""
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key,
                "aws_session_token": self.token}


async def assume_role(role: AssumedRole, region: str, endpoint_url: str = "") -> Credentials:
    """One STS AssumeRole call with the ambient credentials."""
    from aiobotocore.session import get_session

    kwargs: dict[str, Any] = {"RoleArn": role.role_arn, "RoleSessionName": role.session_name}
    if role.external_id:
        kwargs["ExternalId"] = role.external_id
    client_args: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        client_args["endpoint_url"] = endpoint_url
    async with get_session().create_client("sts", **client_args) as sts:
        c = (await sts.assume_role(**kwargs))["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], c["Expiration"])


def assumed_role_session(role: AssumedRole, region: str) -> AioSession:
    """An aiobotocore session acting as ``role``; its credentials are refreshed before expiry."""
    from aiobotocore.credentials import AioDeferredRefreshableCredentials
    from aiobotocore.session import get_session

    async def refresh() -> dict[str, Any]:
        creds = await assume_role(role, region)
        return {"access_key": creds.access_key, "secret_key": creds.secret_key,
                "token": creds.token, "expiry_time": creds.expiry.isoformat()}

    session = get_session()
    # aiobotocore has no public setter for refreshable credentials; this is how its own
    # providers install them.
    session._credentials = AioDeferredRefreshableCredentials(refresh, "sts-assume-role")
    return session


# -- backoff -----------------------------------------------------------------------------


class Backoff:
    """Capped exponential backoff with full jitter (AWS's recommendation): each wait is
    uniform in [0, min(cap, base * 2**attempt)]."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError("need 0 < base_s <= max_s")
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next wait."""
        return min(self.max_s, self.base_s * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
