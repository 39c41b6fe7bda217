"""DredgeConfig: the daemon's settings, one dataclass per component, from TOML plus environment.

Every field default *is* the default; ``DredgeConfig()`` validates. A file is read with
:func:`load_config`; keys the dataclasses do not declare are refused with their dotted name
(``pipeline.flush_intervall``), and every value is checked by the component's ``validate()``
which raises :class:`ConfigError` naming the key (``streams[0].start_position``).

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

import dataclasses
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dredge.decode.batch import DecodeConfig
from dredge.errors import ConfigError, ParseError
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.serve.config import ServeConfig
from dredge.sinks.druid import DruidConfig
from dredge.sinks.duckdb import DuckDBConfig
from dredge.sinks.kinesis_out import KinesisOutConfig
from dredge.sources.kinesis.leases import AT_TIMESTAMP, INITIAL_POSITIONS, LeaseConfig

if TYPE_CHECKING:  # the index's modules load numba: imported when validated or used
    from dredge.index.ec2 import Ec2Config
    from dredge.index.events import EventFileConfig, EventStreamConfig
    from dredge.index.live import IndexConfig

ENV_PREFIX = "DREDGE_"
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _sub_validate(prefix: str, validate: typing.Callable[[], None]) -> None:
    """Run a component's validate() and make the field it names a full dotted path."""
    try:
        validate()
    except ConfigError as exc:
        if exc.field.startswith(prefix + ".") or exc.field == prefix:
            raise
        message = str(exc)[len(exc.field) + 2:]
        raise ConfigError(f"{prefix}.{exc.field}", message) from None


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


def _url(where: str, url: str) -> None:
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(where, "an http:// or https:// URL")


@dataclass(frozen=True)
class Ec2Section:
    """One EC2 inventory provider (``[[index.ec2]]``): accounts x regions, polled."""

    regions: list[str] = field(default_factory=lambda: ["us-east-1"])
    # one IAM role per account to assume (the account is the ARN's); [] = the default
    # credentials' own account
    role_arns: list[str] = field(default_factory=list)
    role_session_name: str = "dredge-index"
    external_id: str = ""
    endpoint_url: str = ""  # EC2 and STS endpoint; empty: AWS (or AWS_ENDPOINT_URL)
    poll_interval_s: float = 60.0
    app_tags: list[str] = field(default_factory=lambda: ["app", "application", "App"])
    cluster_tags: list[str] = field(default_factory=lambda: ["cluster", "Cluster"])
    asg_convention: bool = True  # app/cluster from "app-stack-detail-vNNN" group names

    def validate(self) -> None:
        self.provider_config().validate()
        _url("endpoint_url", self.endpoint_url)
        for i, r in enumerate(self.regions):
            if not r:
                raise ConfigError(f"regions[{i}]", "must not be empty")

    def provider_config(self) -> Ec2Config:
        from dredge.index.ec2 import Ec2Config

        return Ec2Config(
            regions=tuple(self.regions), role_arns=tuple(self.role_arns),
            role_session_name=self.role_session_name, external_id=self.external_id,
            poll_interval_s=self.poll_interval_s, app_tags=tuple(self.app_tags),
            cluster_tags=tuple(self.cluster_tags), asg_convention=self.asg_convention,
            endpoint_url=self.endpoint_url)


EVENT_KINDS = ("file", "kinesis")


@dataclass(frozen=True)
class EventsSection:
    """One assignment-event provider (``[[index.events]]``): a JSON-lines file or a stream."""

    kind: str = "file"  # "file" (followed as it is appended to) or "kinesis"
    path: str = ""  # kind = "file"
    start_at: str = "beginning"  # kind = "file", no saved position: "beginning" or "end"
    stream: str = ""  # kind = "kinesis": the stream name (every shard is read, no leases)
    region: str = ""  # kind = "kinesis"; empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str = ""  # kind = "kinesis"; empty: AWS (or AWS_ENDPOINT_URL)
    initial_position: str = "TRIM_HORIZON"  # kind = "kinesis", no saved position
    poll_interval_s: float = 1.0

    def validate(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ConfigError("kind", f"one of {list(EVENT_KINDS)}")
        if self.kind == "file":
            for name in ("stream", "region", "endpoint_url"):
                if getattr(self, name):
                    raise ConfigError(name, 'only with kind = "kinesis"')
        else:
            if self.path:
                raise ConfigError("path", 'only with kind = "file"')
            if not _STREAM_NAME.match(self.stream):
                raise ConfigError("stream", "a Kinesis stream name: 1-128 of A-Z a-z 0-9 _ . -")
            _url("endpoint_url", self.endpoint_url)
        self.provider_config().validate()

    def provider_config(self) -> EventFileConfig | EventStreamConfig:
        from dredge.index.events import EventFileConfig, EventStreamConfig

        if self.kind == "file":
            return EventFileConfig(path=self.path, poll_interval_s=self.poll_interval_s,
                                   start_at=self.start_at)
        region = (self.region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        return EventStreamConfig(stream=self.stream, region=region,
                                 endpoint_url=self.endpoint_url,
                                 initial_position=self.initial_position,
                                 poll_interval_s=self.poll_interval_s)


@dataclass(frozen=True)
class IndexSection:
    """The IP -> application index (``[index]``).

    Ownership files alone (no provider, no ``state_path``): one static snapshot built at
    start, as ``dredge replay --index/--cidrs``. Anything else: the live index
    (``dredge.index.live``) with the configured providers, ``cidrs`` reloaded when they
    change, history kept ``retention_s`` and saved to ``state_path``.
    """

    ownership: list[str] = field(default_factory=list)  # ownership history, JSON lines
    cidrs: list[str] = field(default_factory=list)  # CIDR maps: CSV or AWS ip-ranges.json
    cidr_poll_interval_s: float = 10.0  # live index: look for changed CIDR maps this often
    state_path: str = ""  # live index: saved here periodically and on stop, loaded at start
    retention_s: float = 24 * 3600.0  # live index: history kept this long
    save_interval_s: float = 300.0
    debounce_s: float = 1.0  # live index: wait this long after a change before rebuilding
    compact_interval_s: float = 300.0  # rebuild (compact) at least this often
    ec2: list[Ec2Section] = field(default_factory=list)
    events: list[EventsSection] = field(default_factory=list)

    def validate(self) -> None:
        for i, p in enumerate(self.ownership):
            if not p:
                raise ConfigError(f"ownership[{i}]", "must not be empty")
        for i, p in enumerate(self.cidrs):
            if not p:
                raise ConfigError(f"cidrs[{i}]", "must not be empty")
            if self.live and not p.endswith((".csv", ".json")):  # the live reloader's rule
                raise ConfigError(f"cidrs[{i}]", f"{p}: a .csv CIDR map or an ip-ranges .json file")
        if not self.cidr_poll_interval_s > 0:
            raise ConfigError("cidr_poll_interval_s", "must be > 0")
        self.live_config().validate()
        for i, e in enumerate(self.ec2):
            _sub_validate(f"ec2[{i}]", e.validate)
        paths: set[str] = set()
        for i, ev in enumerate(self.events):
            _sub_validate(f"events[{i}]", ev.validate)
            key = ev.path or f"kinesis:{ev.stream}"
            if key in paths:  # one source per file or stream: two would share positions
                raise ConfigError(f"events[{i}]", f"{key} is listed twice")
            paths.add(key)

    @property
    def live(self) -> bool:
        """True: the daemon runs the live index; False: one static snapshot from the files."""
        return bool(self.ec2 or self.events or self.state_path or not self.ownership)

    def live_config(self) -> IndexConfig:
        from dredge.index.live import IndexConfig

        return IndexConfig(retention_s=self.retention_s, debounce_s=self.debounce_s,
                           compact_interval_s=self.compact_interval_s,
                           state_path=self.state_path, save_interval_s=self.save_interval_s)


@dataclass(frozen=True)
class PipelineConfig:
    window_s: int = 60  # rollup window
    flush_interval_s: float = 1.0  # commit rows + checkpoints this often
    queue_batches: int = 64  # GetRecords batches waiting for the pipeline (backpressure)
    sink_retry_max_s: float = 30.0  # longest wait between retries of a failed flush
    shutdown_flush_attempts: int = 5  # flush attempts on SIGTERM before giving up (no checkpoint)
    # hold parsed batches this long before enrichment, so late assignment events land in the
    # index first; 0 = off. Held batches are never checkpointed (dropped on stop, read again).
    holdback_s: float = 0.0
    holdback_max_rows: int = 5_000_000  # flow rows held at most; more: readers wait

    def validate(self) -> None:
        if self.window_s <= 0 or (86400 % self.window_s and self.window_s % 60):
            raise ConfigError("window_s", "a positive number of seconds dividing a day, or whole minutes")
        if not self.flush_interval_s > 0:
            raise ConfigError("flush_interval_s", "must be > 0")
        if self.queue_batches < 1:
            raise ConfigError("queue_batches", "must be >= 1")
        if not self.sink_retry_max_s > 0:
            raise ConfigError("sink_retry_max_s", "must be > 0")
        if self.shutdown_flush_attempts < 1:
            raise ConfigError("shutdown_flush_attempts", "must be >= 1")
        if not 0 <= self.holdback_s <= 3600:
            raise ConfigError("holdback_s", "between 0 (off) and 3600 seconds")
        if self.holdback_max_rows < 1:
            raise ConfigError("holdback_max_rows", "must be >= 1")


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
class SinkConfig:
    """The DuckDB store always; the other sections are off unless present in the file (or set
    by an environment variable such as ``DREDGE_SINK__KINESIS_OUT__STREAM``)."""

    duckdb: DuckDBConfig = field(default_factory=DuckDBConfig)
    # Publish each flush's rows to this Kinesis stream before storing them (Druid's supervisor
    # reads it): a failed publish holds the flush and its checkpoints.
    kinesis_out: KinesisOutConfig | None = None
    # Where Druid is: `dredge druid ...`, `query --backend druid` and `replay --sink druid`
    # read it with --config; the daemon does not talk to Druid (the stream is in between).
    druid: DruidConfig | None = None

    def validate(self) -> None:
        self.duckdb.validate()
        if self.kinesis_out is not None:
            _sub_validate("kinesis_out", self.kinesis_out.validate)
        if self.druid is not None:
            self.druid.validate()  # its errors already name druid.<key>


@dataclass(frozen=True)
class DeadLetterConfig:
    path: str = "dredge.deadletter.jsonl"  # JSON lines; empty: count only

    def validate(self) -> None:
        pass


@dataclass(frozen=True)
class MetricsConfig:
    # The process's HTTP server: /metrics, /healthz, /readyz, /api/*, the dashboards
    # ([serve] has its auth and limits); 0 = no HTTP server
    port: int = 9108
    host: str = "127.0.0.1"  # others need [serve] auth (or allow_unauthenticated)

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", "must be in 0..65535")


@dataclass(frozen=True)
class DredgeConfig:
    streams: list[StreamConfig] = field(default_factory=list)
    index: IndexSection = field(default_factory=IndexSection)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    kinesis: KinesisConfig = field(default_factory=KinesisConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    lease: LeaseSection = field(default_factory=LeaseSection)
    sink: SinkConfig = field(default_factory=SinkConfig)
    dead_letter: DeadLetterConfig = field(default_factory=DeadLetterConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    log_level: str = "info"
    worker_id: str = ""  # empty: "<hostname>:<pid>"

    def validate(self) -> None:
        """Every value; an empty ``streams`` list is valid here (``require_streams`` at start)."""
        names: set[str] = set()
        tables: set[str] = set()
        for i, stream in enumerate(self.streams):
            _sub_validate(f"streams[{i}]", stream.validate)
            if stream.name in names:
                raise ConfigError(f"streams[{i}].name", f"stream {stream.name!r} is listed twice")
            names.add(stream.name)
            table = stream.table_name(self.lease.table)
            if table in tables:
                raise ConfigError(f"streams[{i}].lease_table", f"table {table!r} used twice")
            tables.add(table)
            _sub_validate(f"streams[{i}].lease_table", self.lease.lease_config(table).validate)
        for name in ("index", "pipeline", "kinesis", "decode", "lease", "sink", "dead_letter",
                     "metrics", "serve"):
            _sub_validate(name, getattr(self, name).validate)
        if self.metrics.port:
            self.serve.check_bind(self.metrics.host)
        if self.log_level.lower() not in _LOG_LEVELS:
            raise ConfigError("log_level", f"one of {list(_LOG_LEVELS)}")
        if self.lease.renew_interval_s >= self.lease.failover_time_s:
            raise ConfigError("lease.renew_interval_s", "must be < lease.failover_time_s")

    def require_streams(self) -> None:
        if not self.streams:
            raise ConfigError("streams", "configure at least one [[streams]] table")

    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}:{os.getpid()}"


# -- loading ---------------------------------------------------------------------------


def load_config(path: Path | str | None, env: Mapping[str, str] | None = None) -> DredgeConfig:
    """Read a TOML file (None: defaults only), apply ``DREDGE_*`` overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    apply_env(data, os.environ if env is None else env)
    config: DredgeConfig = build(DredgeConfig, data, "")
    config.validate()
    return config


def build(cls: type[Any], data: Mapping[str, Any], path: str) -> Any:
    """A dataclass from a mapping; unknown keys and wrong types are refused by dotted name."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "config", "must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            raise ConfigError(where, "unknown key")
        kwargs[key] = _convert(hints[key], value, where)
    return cls(**kwargs)


def _section(hint: Any) -> Any:
    """``X`` for an optional section ``X | None`` (X a dataclass), else ``hint`` itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            return args[0]
    return hint


def _convert(hint: Any, value: Any, where: str) -> Any:
    hint = _section(hint)  # an optional section is on when it is present
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(where, "must be a list")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(where, "unsupported type")  # no optional fields: defaults are values
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, "must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, "must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, "must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, "must be a string")
        return value
    raise ConfigError(where, f"unsupported type {hint}")


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fold ``DREDGE_A__B=v`` into ``data['a']['b']``, typed by the target field."""
    top = {f.name: f for f in dataclasses.fields(DredgeConfig)}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if parts[0] not in top or (len(parts) == 1 and name.count("__")):
            continue  # not configuration (DREDGE_LOG_JSON, DREDGE_CONFIG)
        hint: Any = DredgeConfig
        node: Any = data
        where = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if typing.get_origin(hint) is list:
                if not part.isdigit():
                    raise ConfigError(f"{where}.{part}", f"{name}: a list index is needed here")
                idx = int(part)
                while len(node) <= idx:
                    node.append({})
                where = f"{where}[{idx}]"
                hint = typing.get_args(hint)[0]
                if last:
                    raise ConfigError(where, f"{name}: set the item's keys, not the item")
                node = node[idx]
                continue
            hints = typing.get_type_hints(hint)
            where = f"{where}.{part}" if where else part
            if part not in hints:
                raise ConfigError(where, f"unknown key (from environment variable {name})")
            hint = _section(hints[part])
            if last:
                node[part] = _env_value(hint, env[name], where)
            else:
                node = node.setdefault(part, [] if typing.get_origin(hint) is list else {})


def _env_value(hint: Any, raw: str, where: str) -> Any:
    if hint is str:
        return raw
    if typing.get_origin(hint) is list:
        text = raw.strip()
        if text.startswith("["):
            return _toml_value(text, where)
        return [p.strip() for p in text.split(",") if p.strip()]
    if hint is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(where, f"must be true or false, not {raw!r}")
    return _toml_value(raw.strip(), where)


def _toml_value(text: str, where: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(where, f"cannot read {text!r}") from None
