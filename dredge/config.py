"""DredgeConfig: the daemon's settings, composed from the components' own dataclasses.

Each section is declared once, beside the code that uses it; this module only composes them
and checks the rules that span sections (unique streams and lease tables; a non-loopback
``[metrics] host`` needs ``[serve]`` credentials)::

    [pipeline]     dredge.pipeline.PipelineConfig      [decode]   dredge.decode.batch.DecodeConfig
    [sink]         dredge.sinks.config.SinkConfig      (duckdb, kinesis_out, druid, iceberg beside each sink)
    [dead_letter]  dredge.sinks.deadletter.DeadLetterConfig
    [metrics]      dredge.telemetry.metrics.MetricsConfig   (where the HTTP server listens)
    [serve]        dredge.serve.config.ServeConfig          (its auth and limits)
    [index]        dredge.index.providers.config.IndexConfig
    [[streams]], [kinesis], [lease]   dredge.sources.kinesis.config

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
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dredge import settings
from dredge.decode.batch import DecodeConfig
from dredge.errors import ConfigError
from dredge.index.providers.config import IndexConfig
from dredge.pipeline import PipelineConfig
from dredge.serve.config import ServeConfig
from dredge.settings import sub_validate
from dredge.sinks.config import DeadLetterConfig, SinkConfig
from dredge.sources.kinesis.config import KinesisConfig, LeaseConfig, StreamConfig, check_table_name
from dredge.telemetry.metrics import MetricsConfig

__all__ = ["DredgeConfig", "StreamConfig", "load_config"]

_LOG_LEVELS = ("debug", "info", "warning", "error")


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
    serve: ServeConfig = field(default_factory=ServeConfig)
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
            check_table_name(f"streams[{i}].lease_table", table)
        for name in ("index", "pipeline", "kinesis", "decode", "lease", "sink", "dead_letter",
                     "metrics", "serve"):
            sub_validate(name, getattr(self, name).validate)
        if self.metrics.port:
            self.serve.check_bind(self.metrics.host)
        if self.log_level.lower() not in _LOG_LEVELS:
            raise ConfigError("log_level", f"one of {list(_LOG_LEVELS)}")

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
