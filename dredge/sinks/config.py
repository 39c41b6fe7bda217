"""``[sink]``: the sinks' settings composed (each sink declares its own beside its code)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dredge.errors import ConfigError
from dredge.settings import sub_validate
from dredge.sinks.deadletter import DeadLetterConfig
from dredge.sinks.druid import DruidConfig
from dredge.sinks.duckdb import DuckDBConfig
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.kinesis_out import KinesisOutConfig

__all__ = ["DeadLetterConfig", "SinkConfig"]


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
    # The fleet-wide ledger: the daemon buffers each flush's rows with their shard positions and
    # commits both every commit_interval_s (dredge.sinks.iceberg); `replay --sink iceberg`.
    iceberg: IcebergConfig | None = None

    def validate(self) -> None:
        self.duckdb.validate()
        if self.kinesis_out is not None:
            sub_validate("kinesis_out", self.kinesis_out.validate)
        if self.druid is not None:
            self.druid.validate()  # its errors already name druid.<key>
        if self.iceberg is not None:
            sub_validate("iceberg", self.iceberg.validate)
            if self.iceberg.reconcile_every_s and self.druid is None:
                raise ConfigError("sink.iceberg.reconcile_every_s",
                                  "reconciling Druid needs [sink.druid] (where Druid is)")
