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
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dredge.decode.batch import DecodeConfig
from dredge.errors import ConfigError
from dredge.index.providers.config import IndexConfig
from dredge.sinks.druid import DruidConfig
from dredge.sinks.duckdb import DuckDBConfig
from dredge.sinks.kinesis_out import KinesisOutConfig
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig, check_table_name

ENV_PREFIX = "DREDGE_"
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
    port: int = 9108  # Prometheus /metrics; 0 = no HTTP server
    host: str = "0.0.0.0"

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", "must be in 0..65535")


@dataclass(frozen=True)
class DredgeConfig:
    streams: list[StreamConfig] = field(default_factory=list)
    index: IndexConfig = field(default_factory=IndexConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    kinesis: KinesisConfig = field(default_factory=KinesisConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    lease: LeaseConfig = field(default_factory=LeaseConfig)
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
            _sub_validate(f"streams[{i}]", stream.validate)
            if stream.name in names:
                raise ConfigError(f"streams[{i}].name", f"stream {stream.name!r} is listed twice")
            names.add(stream.name)
            table = stream.table_name(self.lease.table)
            if table in tables:
                raise ConfigError(f"streams[{i}].lease_table", f"table {table!r} used twice")
            tables.add(table)
            check_table_name(f"streams[{i}].lease_table", table)
        for name in ("index", "pipeline", "kinesis", "decode", "lease", "sink", "dead_letter",
                     "metrics"):
            _sub_validate(name, getattr(self, name).validate)
        if self.log_level.lower() not in _LOG_LEVELS:
            raise ConfigError("log_level", f"one of {list(_LOG_LEVELS)}")

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
