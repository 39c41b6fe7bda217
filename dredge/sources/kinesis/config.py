"""The Kinesis source's settings: streams (``[[streams]]``), readers (``[kinesis]``), leases (``[lease]``).

Each dataclass's field defaults *are* the defaults; ``validate()`` checks every rule once
and raises ``ConfigError`` naming the key (``dredge.config`` prefixes the section). The
lease settings are one dataclass for the whole daemon; a stream's own table name and start
position come from its ``StreamConfig`` (``table_name``, ``start_position``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from dredge.errors import ConfigError, ParseError
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.settings import check_url
from dredge.sources.kinesis.shards import AT_TIMESTAMP, TRIM_HORIZON, check_initial_position

__all__ = ["KinesisConfig", "LeaseConfig", "StreamConfig", "check_table_name"]

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")



def check_stream_name(key: str, name: str) -> None:
    """A Kinesis stream name, or ConfigError(key)."""
    if not _STREAM_NAME.match(name):
        raise ConfigError(key, "a Kinesis stream name: 1-128 of A-Z a-z 0-9 _ . -")


def check_table_name(key: str, table: str) -> None:
    """A DynamoDB table name, or ConfigError(key)."""
    if not _TABLE_NAME.match(table):
        raise ConfigError(key, "3-255 characters of A-Z a-z 0-9 _ . -")


@dataclass(frozen=True)
class StreamConfig:
    """One Kinesis data stream to read (``[[streams]]``)."""

    name: str = ""  # the Kinesis stream name; also the key of its checkpoints in the store
    region: str = ""  # empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str = ""  # empty: the AWS endpoint (or AWS_ENDPOINT_URL)
    role_arn: str = ""  # assume this role (STS) for Kinesis calls; empty: ambient credentials
    role_session_name: str = "dredge"
    external_id: str = ""
    format: str = ""  # flow-log format of the lines (no header in CloudWatch Logs); empty: v2
    start_position: str = TRIM_HORIZON  # for shards without a checkpoint
    start_timestamp: str = ""  # with AT_TIMESTAMP: ISO-8601 (2026-11-25T10:00:00Z) or epoch s
    lease_table: str = ""  # empty: "<lease.table>-<name>"

    def validate(self) -> None:
        check_stream_name("name", self.name)
        check_initial_position(self.start_position, "start_position")
        if self.start_position == AT_TIMESTAMP:
            self.timestamp()
        elif self.start_timestamp:
            raise ConfigError("start_timestamp", "only with start_position = AT_TIMESTAMP")
        if self.role_arn and not self.role_arn.startswith("arn:"):
            raise ConfigError("role_arn", "an IAM role ARN (arn:aws:iam::123456789012:role/name)")
        check_url("endpoint_url", self.endpoint_url)
        try:
            self.flow_format().check_enrichable()
        except ParseError as exc:
            raise ConfigError("format", str(exc)) from exc

    def flow_format(self) -> FlowFormat:
        return FlowFormat.parse(self.format) if self.format else DEFAULT_FORMAT

    def timestamp(self) -> datetime:
        """The AT_TIMESTAMP start, as an aware UTC datetime."""
        raw = self.start_timestamp.strip()
        try:
            if re.fullmatch(r"\d+(\.\d+)?", raw):
                return datetime.fromtimestamp(float(raw), UTC)
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):  # OverflowError/OSError: past time_t
            raise ConfigError("start_timestamp", f"not a time: {raw!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def table_name(self, lease_table_prefix: str) -> str:
        return self.lease_table or f"{lease_table_prefix}-{self.name}"


@dataclass(frozen=True)
class KinesisConfig:
    """Shard readers and discovery (the same for every stream)."""

    max_records: int = 10000  # Limit of each GetRecords call (1..10000)
    max_calls_per_s: float = 5.0  # per shard; Kinesis allows 5
    max_bytes_per_s: int = 2 * 1024 * 1024  # per shard; Kinesis allows 2 MiB/s
    idle_poll_interval_s: float = 0.5  # wait after a GetRecords call that returned nothing
    backoff_base_s: float = 0.2  # first retry wait (full jitter, doubling)
    backoff_max_s: float = 10.0
    list_shards_interval_s: float = 30.0  # re-list shards (splits, merges) this often
    reader_restart_max_s: float = 30.0  # longest wait before restarting a crashed shard reader
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0

    def validate(self) -> None:
        if not 1 <= self.max_records <= 10000:
            raise ConfigError("max_records", "must be in 1..10000")
        if not 0 < self.max_calls_per_s <= 5:
            raise ConfigError("max_calls_per_s", "must be in (0, 5]")
        if self.max_bytes_per_s < 1024:
            raise ConfigError("max_bytes_per_s", "must be >= 1024")
        for name in ("idle_poll_interval_s", "backoff_base_s", "backoff_max_s",
                     "list_shards_interval_s", "reader_restart_max_s", "connect_timeout_s",
                     "read_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, "must be > 0")
        if self.backoff_max_s < self.backoff_base_s:
            raise ConfigError("backoff_max_s", "must be >= backoff_base_s")


@dataclass(frozen=True)
class LeaseConfig:
    """The lease tables (KCL layout, see ``sources.kinesis.leases``): one per stream, named
    ``<table>-<stream name>`` unless the stream sets ``lease_table``."""

    table: str = "dredge-leases"  # prefix of each stream's table (the table itself when used alone)
    region: str = ""  # of the DynamoDB tables; empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str = ""
    # KCL failoverTimeMillis: a lease whose counter stands still this long is expired.
    failover_time_s: float = 10.0
    # About failover / 3, so two renewals in a row may fail before the lease expires.
    renew_interval_s: float = 3.0
    take_interval_s: float = 5.0  # run the lease taker this often
    max_leases_per_worker: int = 0  # 0 = unlimited
    max_leases_to_steal_at_once: int = 1
    # Delete leases of finished shards (split/merged, every child started, or trimmed) this
    # often, like KCL's lease cleanup; 0 = keep them.
    cleanup_interval_s: float = 300.0

    def validate(self) -> None:
        check_table_name("table", self.table)
        if not self.failover_time_s > 0:
            raise ConfigError("failover_time_s", "must be > 0")
        if not 0 < self.renew_interval_s < self.failover_time_s:
            raise ConfigError("renew_interval_s", "must be > 0 and < failover_time_s")
        if not self.take_interval_s > 0:
            raise ConfigError("take_interval_s", "must be > 0")
        if self.max_leases_per_worker < 0:
            raise ConfigError("max_leases_per_worker", "must be >= 0 (0 = unlimited)")
        if self.max_leases_to_steal_at_once < 1:
            raise ConfigError("max_leases_to_steal_at_once", "must be >= 1")
        if self.cleanup_interval_s < 0:
            raise ConfigError("cleanup_interval_s", "must be >= 0 (0 = keep finished leases)")
        check_url("endpoint_url", self.endpoint_url)
