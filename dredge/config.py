"""DredgeConfig: the daemon's settings, composed from the components' own dataclasses.

Each section is declared once, beside the code that uses it; this module only composes them
and checks the rules that span sections (unique streams and lease tables)::

    [pipeline]     dredge.pipeline.PipelineConfig      [decode]   dredge.decode.batch.DecodeConfig
    [sink]         dredge.sinks.config.SinkConfig      (duckdb, kinesis_out, druid beside each sink)
    [dead_letter]  dredge.sinks.deadletter.DeadLetterConfig
    [metrics]      dredge.telemetry.metrics.MetricsConfig
    [index]        dredge.index.providers.config.IndexConfig
    [[streams]], [kinesis], [lease]: below (moving beside the Kinesis source)

Every field default *is* the default; ``DredgeConfig()`` validates. A file is read with
:func:`load_config` (the generic loader is :mod:`dredge.settings`); keys the dataclasses do
not declare are refused with their dotted name (``pipeline.flush_intervall``), and every
value is checked by the component's ``validate()`` which raises :class:`ConfigError` naming
the key (``streams[0].start_position``).

Environment overrides (applied after the file, before validation): ``DREDGE_`` + the key's
path in upper case with ``__`` between levels, list items by index::

    DREDGE_SINK__DUCKDB__PATH=/data/dredge.duckdb     [sink.duckdb] path
    DREDGE_PIPELINE__FLUSH_INTERVAL_S=2.5             [pipeline] flush_interval_s
    DREDGE_WORKER_ID=ingest-3                         worker_id (top level)
    DREDGE_STREAMS__0__REGION=eu-west-1               [[streams]] #0 region
    DREDGE_INDEX__OWNERSHIP=a.jsonl,b.jsonl           lists: comma-separated or a TOML array

A variable naming a known section with an unknown key is refused like a bad file key;
other ``DREDGE_*`` variables (``DREDGE_LOG_JSON``) are not configuration and are ignored.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dredge import settings
from dredge.decode.batch import DecodeConfig
from dredge.errors import ConfigError, ParseError
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.index.providers.config import IndexConfig
from dredge.pipeline import PipelineConfig
from dredge.settings import sub_validate
from dredge.sinks.config import DeadLetterConfig, SinkConfig
from dredge.sources.kinesis.leases import AT_TIMESTAMP, INITIAL_POSITIONS, LeaseConfig
from dredge.telemetry.metrics import MetricsConfig

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_LOG_LEVELS = ("debug", "info", "warning", "error")


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
    start_position: str = "TRIM_HORIZON"  # for shards without a checkpoint
    start_timestamp: str = ""  # with AT_TIMESTAMP: ISO-8601 (2026-11-25T10:00:00Z) or epoch s
    lease_table: str = ""  # empty: "<lease.table>-<name>"

    def validate(self) -> None:
        if not _STREAM_NAME.match(self.name):
            raise ConfigError("name", "a Kinesis stream name: 1-128 of A-Z a-z 0-9 _ . -")
        if self.start_position not in INITIAL_POSITIONS:
            raise ConfigError("start_position", f"one of {sorted(INITIAL_POSITIONS)}")
        if self.start_position == AT_TIMESTAMP:
            self.timestamp()
        elif self.start_timestamp:
            raise ConfigError("start_timestamp", "only with start_position = AT_TIMESTAMP")
        if self.role_arn and not self.role_arn.startswith("arn:"):
            raise ConfigError("role_arn", "an IAM role ARN (arn:aws:iam::123456789012:role/name)")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError("endpoint_url", "an http:// or https:// URL")
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
        except ValueError:
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
class LeaseSection:
    """The lease table (KCL layout, see ``sources.kinesis.leases``); one table per stream."""

    table: str = "dredge-leases"  # prefix: a stream's table is "<table>-<stream name>"
    region: str = ""  # of the DynamoDB table; empty: as the AWS SDK decides
    endpoint_url: str = ""
    failover_time_s: float = 10.0
    renew_interval_s: float = 3.0
    take_interval_s: float = 5.0  # run the lease taker this often
    max_leases_per_worker: int = 0
    max_leases_to_steal_at_once: int = 1
    # Delete leases of finished shards (split/merged, every child started, or trimmed) this
    # often, like KCL's lease cleanup; 0 = keep them.
    cleanup_interval_s: float = 300.0

    def validate(self) -> None:
        self.lease_config(self.table + "-x").validate()
        if not self.take_interval_s > 0:
            raise ConfigError("take_interval_s", "must be > 0")
        if self.cleanup_interval_s < 0:
            raise ConfigError("cleanup_interval_s", "must be >= 0 (0 = keep finished leases)")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError("endpoint_url", "an http:// or https:// URL")

    def lease_config(self, table: str, initial_position: str = "TRIM_HORIZON") -> LeaseConfig:
        return LeaseConfig(
            table=table,
            failover_time_s=self.failover_time_s,
            renew_interval_s=self.renew_interval_s,
            max_leases_per_worker=self.max_leases_per_worker,
            max_leases_to_steal_at_once=self.max_leases_to_steal_at_once,
            initial_position=initial_position,
        )


@dataclass(frozen=True)
class DredgeConfig:
    streams: list[StreamConfig] = field(default_factory=list)
    index: IndexConfig = field(default_factory=IndexConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    kinesis: KinesisConfig = field(default_factory=KinesisConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    lease: LeaseSection = field(default_factory=LeaseSection)
    sink: SinkConfig = field(default_factory=SinkConfig)
    dead_letter: DeadLetterConfig = field(default_factory=DeadLetterConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log_level: str = "info"
    worker_id: str = ""  # empty: "<hostname>:<pid>"

    def validate(self) -> None:
        """Every value; an empty ``streams`` list is valid here (``require_streams`` at start)."""
        names: set[str] = set()
        tables: set[str] = set()
        for i, stream in enumerate(self.streams):
            sub_validate(f"streams[{i}]", stream.validate)
            if stream.name in names:
                raise ConfigError(f"streams[{i}].name", f"stream {stream.name!r} is listed twice")
            names.add(stream.name)
            table = stream.table_name(self.lease.table)
            if table in tables:
                raise ConfigError(f"streams[{i}].lease_table", f"table {table!r} used twice")
            tables.add(table)
            sub_validate(f"streams[{i}].lease_table", self.lease.lease_config(table).validate)
        for name in ("index", "pipeline", "kinesis", "decode", "lease", "sink", "dead_letter",
                     "metrics"):
            sub_validate(name, getattr(self, name).validate)
        if self.log_level.lower() not in _LOG_LEVELS:
            raise ConfigError("log_level", f"one of {list(_LOG_LEVELS)}")
        if self.lease.renew_interval_s >= self.lease.failover_time_s:
            raise ConfigError("lease.renew_interval_s", "must be < lease.failover_time_s")

    def require_streams(self) -> None:
        if not self.streams:
            raise ConfigError("streams", "configure at least one [[streams]] table")

    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}:{os.getpid()}"


def load_config(path: Path | str | None, env: Mapping[str, str] | None = None) -> DredgeConfig:
    """Read a TOML file (None: defaults only), apply ``DREDGE_*`` overrides, validate."""
    config = settings.load(DredgeConfig, path, os.environ if env is None else env)
    config.validate()
    return config
