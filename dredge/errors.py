"""The whole error tree of Dredge.

    DredgeError
    ├── ConfigError          a bad setting; names the field
    ├── SourceError          a source cannot be read (file, S3, Kinesis)
    ├── DecodeError          an envelope cannot be decoded (CloudWatch Logs, KPL)
    ├── ParseError           a flow-log format or header cannot be understood
    ├── OwnerIndexError      the IP -> application index cannot be built or loaded
    ├── SinkError            a sink refused rows or our setup (credentials, certificate, schema)
    │   └── SinkUnavailable  a sink down, unreachable or out of retries: a run-time failure
    └── CheckpointError      a position cannot be stored
        └── LeaseLost        another worker owns the shard now

Per-record problems (a malformed line, a bad address) are counted and written to
the dead-letter file; they are never raised.
"""

from __future__ import annotations


class DredgeError(Exception):
    """Root of every error Dredge raises on purpose."""


class ConfigError(DredgeError):
    """A configuration value is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class SourceError(DredgeError):
    """A source (file, S3 object, Kinesis stream) cannot be read."""


class DecodeError(DredgeError):
    """An envelope (CloudWatch Logs, KPL aggregate) cannot be decoded."""


class ParseError(DredgeError):
    """A flow-log format string or header line cannot be understood."""


class OwnerIndexError(DredgeError):
    """The IP -> application index cannot be built or loaded."""


class SinkError(DredgeError):
    """A sink failed to store rows; nothing after them may be checkpointed."""


class SinkUnavailable(SinkError):
    """The sink is down, unreachable or kept failing: nobody's input is wrong (exit 1, where a
    refused setup such as credentials, a certificate or a missing table exits 2)."""


class CheckpointError(DredgeError):
    """A checkpoint cannot be read or written."""


class LeaseLost(CheckpointError):
    """The lease on a shard was taken by another worker."""
