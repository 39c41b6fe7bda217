"""How a backfill statement's rows reach Druid (``DruidConfig.staging``, ``--druid-staging``).

Each ``REPLACE`` reads its rows (JSON lines, one hour after another) from a Druid input source:

- ``inline``: the rows inside the SQL text. Through the Router and the Broker: small hours only
  (``max_inline_bytes``; checked by the backfill before anything is sent).
- ``local:/dir``: one JSON-lines file per statement in ``/dir``, read by Druid's ``local`` input
  source: the Indexers must see ``/dir`` at the same path (same machine, or a shared mount).
- ``s3://bucket/prefix/``: one gzipped JSON-lines object per hour,
  ``<prefix>dredge-<datasource>-<start>-<random>/<hour>.json.gz``, written with boto3 (Dredge's
  AWS credentials; ``s3_endpoint_url``, ``s3_region``) and read by the ``s3`` input source of
  Druid's ``druid-s3-extensions`` with *Druid's* S3 credentials (``druid.s3.*``). Druid's JSON
  reader decompresses by the ``.gz`` extension. One object per hour lets MSQ spread the hours
  over its workers.

Lifetime: staged once per statement, before its first attempt, reused by its retries, and
removed when the statement ends, succeeded or failed. The rows are a function of the store (a
later run stages them again), the task's error is in the :class:`SinkError`, and objects kept
after failures would pile up with every retried run. A process killed mid-task leaves its
objects behind (keys start with ``dredge-``): an expiry rule on the prefix cleans those.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dredge.aws import error_code, http_status, resolve_region
from dredge.errors import ConfigError, SinkError
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

Part = tuple[int, bytes]  # (hour, its rows as JSON lines)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_DENIED = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
              "InvalidToken", "ExpiredToken", "AccountProblem"}
GZIP_LEVEL = 3  # JSON rows shrink ~20x at level 3 for about the cost of copying them


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` as (bucket, prefix); the prefix is "" or ends with "/"."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError("druid.staging", "s3://bucket/prefix/ with a bucket name of 3-63 "
                          f"lowercase letters, digits, dots and hyphens, not {url!r}")
    prefix = prefix.strip("/")
    if "//" in prefix or any(not c.isprintable() or c.isspace() for c in prefix):
        raise ConfigError("druid.staging", f"an S3 prefix without '//' or blanks, not {url!r}")
    return bucket, prefix + "/" if prefix else ""


def s3_client(endpoint_url: str = "", region: str = "", timeout_s: float = 30.0) -> Any:
    """A boto3 S3 client for staging (botocore's standard retries for throttling and 5xx)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", region_name=resolve_region(region), endpoint_url=endpoint_url or None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=min(timeout_s, 10), read_timeout=timeout_s))


def _hour_name(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%dT%H")


class Staging:
    """Puts a statement's rows where Druid reads them, as a Druid input source, and removes
    them afterwards (:meth:`staged`). ``spec`` is a resolved staging ("auto" already decided)."""

    def __init__(self, spec: str, datasource: str, *, s3_endpoint_url: str = "",
                 s3_region: str = "", timeout_s: float = 30.0, client: Any = None) -> None:
        self.spec = spec
        self.datasource = datasource
        self._s3_args = (s3_endpoint_url, s3_region, timeout_s)
        self._client = client  # built on first use: __init__ does no I/O

    @contextlib.contextmanager
    def staged(self, start: int, parts: list[Part]) -> Iterator[dict[str, Any]]:
        if self.spec == "inline":
            yield {"type": "inline", "data": b"".join(d for _, d in parts).decode()}
        elif self.spec.startswith("s3://"):
            with self._s3(start, parts) as source:
                yield source
        else:
            folder = Path(self.spec.removeprefix("local:"))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"dredge-{self.datasource}-{start}-{uuid.uuid4().hex[:12]}.json"
            path.write_bytes(b"".join(d for _, d in parts))
            try:
                yield {"type": "local", "files": [str(path)]}
            finally:
                path.unlink(missing_ok=True)

    # -- S3 -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(*self._s3_args)
        return self._client

    @contextlib.contextmanager
    def _s3(self, start: int, parts: list[Part]) -> Iterator[dict[str, Any]]:
        bucket, prefix = parse_s3_url(self.spec)
        base = f"{prefix}dredge-{self.datasource}-{start}-{uuid.uuid4().hex[:12]}/"
        keys: list[str] = []
        try:
            for hour, data in parts:
                key = f"{base}{_hour_name(hour)}.json.gz"
                try:
                    self.client.put_object(Bucket=bucket, Key=key,
                                           Body=gzip.compress(data, compresslevel=GZIP_LEVEL),
                                           ContentType="application/x-ndjson")
                except Exception as exc:  # botocore's ClientError / BotoCoreError
                    raise self._s3_error(exc, bucket, key) from exc
                keys.append(key)
            yield {"type": "s3", "uris": [f"s3://{bucket}/{k}" for k in keys]}
        finally:
            self._s3_delete(bucket, keys)

    def _s3_error(self, exc: Exception, bucket: str, key: str) -> SinkError:
        code = error_code(exc) or ""
        status = http_status(exc) or None
        where = f"S3 staging ({self.spec}): writing s3://{bucket}/{key}"
        if code == "NoSuchBucket":
            return SinkError(f"{where}: bucket {bucket!r} does not exist; create it or point "
                             "--druid-staging (DREDGE_DRUID_STAGING) at another; the hours stay "
                             "pending")
        if code in _S3_DENIED or status == 403:
            return SinkError(f"{where}: access denied ({code or 'HTTP 403'}): Dredge's AWS "
                             "credentials need s3:PutObject and s3:DeleteObject on the prefix "
                             "(and Druid's, druid.s3.*, s3:GetObject); the hours stay pending")
        return SinkError(f"{where} failed: {exc}; the hours stay pending")

    def _s3_delete(self, bucket: str, keys: list[str]) -> None:
        """Delete what was staged; a failure is logged, not raised (the REPLACE is decided)."""
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            try:
                out = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
                failed = [f"{e.get('Key')}: {e.get('Code')}" for e in out.get("Errors") or []]
            except Exception as exc:  # cleanup only
                failed = [f"{len(chunk)} object(s): {exc}"]
            if failed:
                log.warning("druid_staging_cleanup_failed", bucket=bucket, objects=len(chunk),
                            error="; ".join(failed)[:500])
