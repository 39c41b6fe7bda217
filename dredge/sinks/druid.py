"""Apache Druid: connection settings, the HTTP API Dredge uses, and the Kinesis ingestion spec.

Two ways in, one datasource (``dredge_flows``, one row per minute and group, rollup on):

- **Live**: Dredge publishes rolled-up rows to a Kinesis output stream
  (:mod:`dredge.sinks.kinesis_out`); Druid's Kinesis supervisor (:func:`supervisor_spec`,
  submitted by ``dredge druid init``) reads it, exactly once from Druid's side.
- **Backfill** (``dredge replay --sink druid``): hours rebuilt from the DuckDB store with
  SQL-based ingestion (:mod:`dredge.sinks.druid_backfill`).

Queries go through pydruid (:mod:`dredge.query.druid`). Errors are :class:`SinkError`;
:class:`DruidUnreachable` (no answer, or HTTP 5xx) is the retryable kind.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dredge.enrich.rollup import DIMENSIONS, METRICS
from dredge.errors import ConfigError, SinkError, SinkUnavailable
from dredge.settings import check_positive
from dredge.sinks.metrics import requests_total
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

LONG_DIMENSIONS = ("protocol", "port", "traffic_path")  # numbers in the flows table: long dimensions


@dataclass(frozen=True)
class DruidConfig:
    """Where Druid is and how to talk to it (``[sink.druid]``; CLI: ``--druid-*``)."""

    url: str = "http://127.0.0.1:8888"  # the Router (SQL, and the Overlord API through it)
    overlord_url: str = ""  # empty: url (the Router's management proxy must be on)
    user: str = ""  # basic auth; empty: none
    password: str = ""
    tls_verify: bool = True  # https: check the server's certificate
    ca_file: str = ""  # https: trust this CA bundle (PEM) instead of the system's
    datasource: str = "dredge_flows"
    timeout_s: float = 30.0  # one HTTP request
    max_attempts: int = 5  # per request or REPLACE task, first try included
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    # Backfill (REPLACE tasks). How the rows reach Druid: "inline" (in the SQL text, through
    # the Router/Broker: small hours only), "local:/dir" (JSON files written to a folder the
    # Druid indexers read at the same path: same machine or a shared mount), "s3://bucket/prefix/"
    # (gzipped JSON objects Dredge writes and Druid reads with its druid-s3-extensions; deleted
    # after the task), or "auto": local next to the DuckDB file when the URL is loopback (Druid on
    # this machine), else inline. Details: dredge/sinks/druid_staging.py.
    staging: str = "auto"
    s3_endpoint_url: str = ""  # s3:// staging, Dredge's side; empty: AWS (or AWS_ENDPOINT_URL)
    s3_region: str = ""  # s3:// staging; empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    max_inline_bytes: int = 4 << 20  # inline JSON per statement; a bigger hour needs local:
    max_statement_hours: int = 24  # consecutive hours replaced by one task
    task_timeout_s: float = 900.0  # one REPLACE task, submitted to segments loaded
    max_num_tasks: int = 2  # MSQ controller + workers per REPLACE

    def validate(self) -> None:
        for name in ("url", "overlord_url"):
            value = getattr(self, name)
            if (value or name == "url") and not value.startswith(("http://", "https://")):
                raise ConfigError(f"druid.{name}", "an http:// or https:// URL")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ConfigError("druid.ca_file", f"no such file: {self.ca_file}")
        if self.password and not self.user:
            raise ConfigError("druid.user", "a password needs a user")
        if not self.datasource or '"' in self.datasource:
            raise ConfigError("druid.datasource", "a datasource name without double quotes")
        check_positive(self, "timeout_s", "backoff_base_s", "task_timeout_s", prefix="druid.")
        if self.backoff_max_s < self.backoff_base_s:
            raise ConfigError("druid.backoff_max_s", "must be >= backoff_base_s")
        if self.max_attempts < 1:
            raise ConfigError("druid.max_attempts", "must be >= 1")
        if self.staging.startswith("s3://"):
            from dredge.sinks.druid_staging import parse_s3_url

            parse_s3_url(self.staging)
        elif self.staging not in ("auto", "inline") and not (
                self.staging.startswith("local:") and self.staging[6:].startswith("/")):
            raise ConfigError("druid.staging",
                              '"auto", "inline", "local:/absolute/dir" or "s3://bucket/prefix/"')
        if self.s3_endpoint_url and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise ConfigError("druid.s3_endpoint_url", "an http:// or https:// URL")
        if self.max_inline_bytes < 1024 or self.max_statement_hours < 1:
            raise ConfigError("druid.max_inline_bytes", "max_inline_bytes >= 1024 and "
                              "max_statement_hours >= 1")
        if self.max_num_tasks < 2:
            raise ConfigError("druid.max_num_tasks", "must be >= 2 (a controller and a worker)")

    def resolved_staging(self, db_path: str) -> str:
        """``staging`` with "auto" decided: local next to the database for a loopback URL."""
        if self.staging != "auto":
            return self.staging
        host = urlsplit(self.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") and db_path != ":memory:":
            return "local:" + os.path.abspath(db_path) + ".druid-staging"
        return "inline"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://") and not self.overlord_url.startswith("https://"):
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("druid.ca_file", f"cannot load {self.ca_file}: {exc}") from exc
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class DruidUnreachable(SinkUnavailable):
    """Druid did not answer, or answered 5xx: worth retrying (a SinkError like any other to
    callers outside the Druid sink)."""


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed behind ``exc`` (urllib's URLError, requests' SSLError
    and the urllib3 errors it wraps), or None."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return err
        todo += [e for e in (err.__cause__, err.__context__, getattr(err, "reason", None), *err.args)
                 if isinstance(e, BaseException)]
    return None


def untrusted_message(url: str, err: ssl.SSLCertVerificationError) -> str:
    """One line for a certificate Dredge does not trust: not worth retrying."""
    why = err.verify_message or err.reason or str(err)
    return (f"Druid at {url}: TLS certificate not trusted ({why}): give its CA with "
            "--druid-ca-file (DREDGE_DRUID_CA_FILE), or skip the check with --no-druid-tls-verify")


def refused_message(what: str, code: int, user: str) -> str:
    """One line for HTTP 401/403 (basic auth): not worth retrying."""
    if code == 401:
        why = (f"user {user!r} or its password refused" if user
               else "Druid wants a user and password")
    else:
        why = f"user {user or '(none)'!r} is not allowed to do this"
    return (f"{what}: HTTP {code}: {why} (--druid-user/--druid-password, "
            "DREDGE_DRUID_USER/DREDGE_DRUID_PASSWORD)")


class DruidAPI:
    """The few Druid HTTP endpoints Dredge uses, with basic auth and TLS settings."""

    def __init__(self, config: DruidConfig) -> None:
        config.validate()
        self.config = config
        self._ssl = config.ssl_context()
        self._auth = ("Basic " + base64.b64encode(f"{config.user}:{config.password}".encode()).decode()
                      if config.user else "")

    def request(self, method: str, path: str, body: Any = None, *, overlord: bool = False,
                timeout: float | None = None) -> Any:
        base = (self.config.overlord_url or self.config.url) if overlord else self.config.url
        url = base.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.config.timeout_s,
                                        context=self._ssl) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            requests_total.labels("druid", "failed").inc()
            if exc.code >= 500:
                raise DruidUnreachable(f"Druid {method} {url}: HTTP {exc.code}: {detail}") from exc
            if exc.code in (401, 403):
                raise SinkError(refused_message(f"Druid {method} {url}", exc.code,
                                                self.config.user)) from exc
            raise SinkError(f"Druid {method} {url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:  # refused, timed out, TLS, bad URL
            requests_total.labels("druid", "failed").inc()
            cert = certificate_error(exc)
            if cert is not None:  # a retry would meet the same certificate
                raise SinkError(untrusted_message(url, cert)) from exc
            reason = getattr(exc, "reason", exc)
            raise DruidUnreachable(f"Druid unreachable at {url}: {reason}") from exc
        requests_total.labels("druid", "ok").inc()
        return json.loads(raw) if raw else None

    def sql(self, query: str, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.request(
            "POST", "/druid/v2/sql", {"query": query, "context": context or {}})
        return rows

    def check(self) -> None:
        """Return when the SQL and the Overlord endpoints answer (the second one checks the
        credentials: /status/health needs none); else :class:`SinkError`."""
        self.request("GET", "/status/health", timeout=5)
        self.request("GET", "/druid/indexer/v1/supervisor", overlord=True, timeout=5)

    def healthy(self) -> str | None:
        """None when :meth:`check` passes; else why not."""
        try:
            self.check()
        except SinkError as exc:
            return str(exc)
        return None

    # -- supervisors ----------------------------------------------------------------------

    def submit_supervisor(self, spec: dict[str, Any]) -> str:
        out = self.request("POST", "/druid/indexer/v1/supervisor", spec, overlord=True)
        return str(out["id"])

    def supervisor_status(self, supervisor_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "GET", f"/druid/indexer/v1/supervisor/{supervisor_id}/status", overlord=True)
        return out.get("payload") or {}

    def supervisors(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.request(
            "GET", "/druid/indexer/v1/supervisor?state=true", overlord=True)
        return out

    def terminate_supervisor(self, supervisor_id: str) -> None:
        self.request("POST", f"/druid/indexer/v1/supervisor/{supervisor_id}/terminate",
                     overlord=True)

    def wait_supervisor_running(self, supervisor_id: str, timeout: float,
                                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Poll until the supervisor is RUNNING; SinkError if it turns unhealthy or time runs out."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while True:
            status = self.supervisor_status(supervisor_id)
            state = str(status.get("state", ""))
            if state == "RUNNING":
                return status
            unhealthy = state.startswith("UNHEALTHY")
            if unhealthy or time.monotonic() >= deadline:
                errors = [f"{e.get('exceptionClass', '')}: {str(e.get('message', ''))[:300]}"
                          for e in status.get("recentErrors") or []]
                why = f"is {state}" if unhealthy else f"not RUNNING after {timeout:.0f}s"
                raise SinkError(f"supervisor {supervisor_id} {why} (detailed state "
                                f"{status.get('detailedState') or 'unknown'})"
                                + (f"; last error: {errors[-1]}" if errors else ""))
            sleep(1.0)

    # -- tasks ----------------------------------------------------------------------------

    def submit_sql_task(self, query: str, context: dict[str, Any]) -> str:
        out = self.request("POST", "/druid/v2/sql/task", {"query": query, "context": context},
                           timeout=max(self.config.timeout_s, 120))
        return str(out["taskId"])

    def task_status(self, task_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "GET", f"/druid/indexer/v1/task/{task_id}/status", overlord=True)
        return out.get("status") or {}


# -- the Kinesis supervisor spec ----------------------------------------------------------


@dataclass(frozen=True)
class SupervisorConfig:
    """The Kinesis supervisor for ``dredge_flows`` (tuning: docs/druid.md)."""

    stream: str = "dredge-flows"
    endpoint: str = ""  # what Druid uses to reach Kinesis; empty: the region's AWS endpoint
    region: str = "us-east-1"
    task_count: int = 1  # reading tasks; at most the stream's shard count
    replicas: int = 1
    task_duration: str = "PT1H"  # a task reads this long, then publishes its segments
    use_earliest: bool = True  # a new supervisor starts at TRIM_HORIZON: nothing is skipped
    late_message_rejection: str = ""  # e.g. "P1D": drop rows older than this; empty: keep all

    def validate(self) -> None:
        if not 1 <= len(self.stream) <= 128:
            raise ConfigError("stream", "a Kinesis stream name (1-128 characters)")
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError("kinesis_endpoint", "an http:// or https:// URL")
        if self.task_count < 1 or self.replicas < 1:
            raise ConfigError("task_count", "task_count and replicas must be >= 1")


def dimensions_spec() -> list[Any]:
    """Every dimension of ``flows`` but the timestamp; the numbers (LONG_DIMENSIONS) as longs."""
    return [{"type": "long", "name": d} if d in LONG_DIMENSIONS else d
            for d in DIMENSIONS if d != "window_start"]


def supervisor_spec(datasource: str, sup: SupervisorConfig) -> dict[str, Any]:
    sup.validate()
    io: dict[str, Any] = {
        "type": "kinesis",
        "stream": sup.stream,
        "inputFormat": {"type": "json"},
        "useEarliestSequenceNumber": sup.use_earliest,
        "taskCount": sup.task_count,
        "replicas": sup.replicas,
        "taskDuration": sup.task_duration,
        "completionTimeout": "PT30M",
        "startDelay": "PT5S",
        "period": "PT30S",
    }
    if sup.endpoint:
        io["endpoint"] = sup.endpoint
    else:
        io["region"] = sup.region
    if sup.late_message_rejection:
        io["lateMessageRejectionPeriod"] = sup.late_message_rejection
    return {
        "type": "kinesis",
        "spec": {
            "dataSchema": {
                "dataSource": datasource,
                "timestampSpec": {"column": "window_start", "format": "iso"},
                "dimensionsSpec": {"dimensions": dimensions_spec()},
                "metricsSpec": [{"type": "longSum", "name": m, "fieldName": m} for m in METRICS],
                "granularitySpec": {"type": "uniform", "segmentGranularity": "hour",
                                    "queryGranularity": "minute", "rollup": True},
            },
            "ioConfig": io,
            "tuningConfig": {
                "type": "kinesis",
                "maxRowsInMemory": 150000,
                "maxBytesInMemory": 0,  # 0: a sixth of the JVM heap
                "intermediatePersistPeriod": "PT10M",
                "maxRowsPerSegment": 5000000,
                "maxTotalRows": 20000000,
                "intermediateHandoffPeriod": "P2147483647D",
                "resetOffsetAutomatically": False,  # never skip data silently
                "logParseExceptions": True,
                "maxParseExceptions": 0,  # a row Druid cannot read is an error, not a skip
                "recordBufferSizeBytes": 50_000_000,
                "fetchThreads": 2,
            },
        },
    }
